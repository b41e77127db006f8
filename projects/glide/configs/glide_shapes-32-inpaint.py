# Text-driven inpainting on the shapes data: the shapes demo model
# (checkpoints/glide_shapes-32.safetensors) fine-tuned as an inpainting
# network (InpaintText2ImUNet: the masked image and the mask as 4 extra
# input channels). train_cfg.init_from_base gives the first conv zero weights
# for those channels, so training starts from the base model exactly; each
# training image gets a random rectangle to fill (10-60 % of each side) and
# the loss is the base recipe's (v, Min-SNR-5, floor 1, low-frequency noise).
#   bash tools/dist_train.sh projects/glide/configs/glide_shapes-32-inpaint.py 2
#   python tools/publish_checkpoint.py \
#       work_dirs/glide_shapes-32-inpaint/iter_1500.pth \
#       checkpoints/glide_shapes-32-inpaint.safetensors --dtype float16
# Sampling: infer(init_image=..., mask=..., prompt=...) keeps the mask-1
# region and pastes it onto every x_0 prediction; tools/eval_shapes.py
# --inpaint scores it (erase the shape of a held-out scene, ask for another).
_base_ = ['./glide_shapes-32.py']

max_iters = 1500
load_from = 'checkpoints/glide_shapes-32.safetensors'
model = dict(
    unet=dict(type='InpaintText2ImUNet'),
    train_cfg=dict(init_from_base=True))
# Validation samples text-to-image, which an inpainting network is not
# trained for: the inpainting score is tools/eval_shapes.py --inpaint.
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters + 1)
val_dataloader = None
val_cfg = None
val_evaluator = None
optim_wrapper = dict(optimizer=dict(lr=3e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters,
         eta_min=3e-5)
]
