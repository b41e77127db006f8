# The distilled shapes cascade (docs/distillation.md): the 4-step student of
# the guided-distillation chain (one pass per step, the guidance scale an
# input of the network) and the 32->64 upsampler with DPM-Solver++ in
# UP_STEPS steps instead of DDIM 'fast27'. A sampling config:
#   init_model(THIS, 'checkpoints/glide_shapes-32-distilled.safetensors')
#       .infer(prompt='a small red circle at the top left on white')
# The student is trained by the chain (bash tools/distill_shapes.sh), the
# upsampler is the demo cascade's (glide_upsampler_2xb16-1k_shapes-32-64).
_base_ = [
    './_base_/models/glide_shapes-32-64.py',
    './_base_/datasets/shapes-64x64.py',
    './_base_/schedules/shapes-distill.py',
    './_base_/shapes_runtime.py',
]
UP_STEPS = 8
model = dict(
    unet=dict(guidance_embed=True),
    diffusion_scheduler=dict(
        _delete_=True,
        type='GlideDDIMScheduler',
        beta_schedule='squaredcos_cap_v2',
        variance_type='learned_range',
        timestep_respacing='4',
        prediction_type='v'),
    diffusion_scheduler_up=dict(
        _delete_=True,
        type='GlideDPMSolverScheduler',
        beta_schedule='linear',
        variance_type='learned_range',
        timestep_respacing=str(UP_STEPS),
        prediction_type='v'),
    test_cfg=dict(num_inference_steps=4))
