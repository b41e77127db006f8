# Guided distillation of the shapes base model, stage 2 (progressive
# distillation, Salimans & Ho 2022): DDIM in 13 steps, learnt from the
# previous stage's student taking 25 (one student step lands where two of
# the teacher's land). Teacher and starting weights: the previous stage's
# published EMA weights (tools/distill_shapes.sh writes them). Sampling:
# DDIM over '13' (evenly spread timesteps, first and last included), one
# guided pass per step.
_base_ = ['./glide_distill-guidance_1xb16-1k_shapes-32x32.py']
teacher = ('work_dirs/glide_distill-guidance_1xb16-1k_shapes-32x32/'
           'student.safetensors')
model = dict(
    diffusion_scheduler=dict(
        _delete_=True,
        type='GlideDDIMScheduler',
        beta_schedule='squaredcos_cap_v2',
        variance_type='learned_range',
        timestep_respacing='13',
        prediction_type='v'),
    train_cfg=dict(
        stage='distill_steps',
        teacher=dict(checkpoint=teacher, guidance_embed=True),
        student_steps=13),
    test_cfg=dict(num_inference_steps=13))
load_from = teacher
