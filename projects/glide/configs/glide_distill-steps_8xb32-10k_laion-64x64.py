# Guided distillation of the released 64x64 GLIDE base model, stage 2
# (progressive distillation of DDIM, Salimans & Ho 2022): one stage halves
# the steps, 97 -> 49 -> 25 -> 13 -> 7 -> 4 (each grid every other timestep
# of the one before). This file is the first stage (49 steps, teacher: stage
# 1's student); each next stage sets its steps and teacher on the command
# line (docs/distillation.md, "Full size", has the loop):
#   bash tools/dist_train.sh \
#       projects/glide/configs/glide_distill-steps_8xb32-10k_laion-64x64.py 8 \
#       --cfg-options model.train_cfg.student_steps=25 \
#       model.diffusion_scheduler.timestep_respacing=25 \
#       model.test_cfg.num_inference_steps=25 \
#       model.train_cfg.teacher.checkpoint=STUDENT_49.safetensors \
#       load_from=STUDENT_49.safetensors
_base_ = ['./glide_distill-guidance_8xb32-10k_laion-64x64.py']
teacher = ('work_dirs/glide_distill-guidance_8xb32-10k_laion-64x64/'
           'student.safetensors')
model = dict(
    diffusion_scheduler=dict(timestep_respacing='49'),
    train_cfg=dict(
        stage='distill_steps',
        teacher=dict(checkpoint=teacher, guidance_embed=True),
        student_steps=49),
    test_cfg=dict(num_inference_steps=49))
load_from = teacher
