# Guided distillation of the shapes base model, stage 2 (progressive
# distillation): DDIM in 4 steps, learnt from the 7-step student of the
# previous stage (its published EMA weights, which tools/distill_shapes.sh
# writes). The recipe is the 13-step stage's.
_base_ = ['./glide_distill-13steps_1xb16-1k_shapes-32x32.py']
teacher = ('work_dirs/glide_distill-7steps_1xb16-1k_shapes-32x32/'
           'student.safetensors')
model = dict(
    diffusion_scheduler=dict(timestep_respacing='4'),
    train_cfg=dict(teacher=dict(checkpoint=teacher), student_steps=4),
    test_cfg=dict(num_inference_steps=4))
load_from = teacher
