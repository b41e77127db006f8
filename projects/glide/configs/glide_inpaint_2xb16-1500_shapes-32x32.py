# Text-driven inpainting on the shapes data: the shapes base model fine-tuned
# as an inpainting network, random rectangles to fill (docs/shapes.md):
#   bash tools/dist_train.sh \
#       projects/glide/configs/glide_inpaint_2xb16-1500_shapes-32x32.py 2
_base_ = [
    './_base_/models/glide_shapes-32x32.py',
    './_base_/datasets/shapes-32x32.py',
    './_base_/schedules/shapes-inpaint_1500.py',
    './_base_/shapes_runtime.py',
]

load_from = 'checkpoints/glide_shapes-32.safetensors'
model = dict(
    unet=dict(type='InpaintText2ImUNet'),
    # the 4 new input channels start at zero: step 0 is the base model
    train_cfg=dict(init_from_base=True))
# Validation samples text-to-image, which an inpainting network is not
# trained for: the inpainting score is tools/eval_shapes.py --inpaint.
val_dataloader = None
val_cfg = None
val_evaluator = None
