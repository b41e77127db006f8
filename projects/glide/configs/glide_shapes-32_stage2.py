# Stage 2 of the shapes demo model: 4000 more steps of the same objective
# (v-prediction, Min-SNR-5 with an x_0-weight floor of 1, low-frequency
# noise, 16-token context) from the weights of stage 1
# (glide_shapes-32.py, 4000 steps from scratch), with the learning rate
# warmed up again to 5e-4 and annealed to 5e-5. At the end of stage 1 the
# small shapes are still drawn at chance (the large ones are right), and
# shape accuracy is still rising when stage 1's cosine schedule ends.
# tools/train_shapes.sh runs both stages and publishes the result:
#   bash tools/dist_train.sh projects/glide/configs/glide_shapes-32_stage2.py 2
# with load_from the float16 EMA weights that stage 1 published.
_base_ = ['./glide_shapes-32.py']

max_iters = 4000
load_from = 'work_dirs/glide_shapes-32/stage1.safetensors'
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=500)
optim_wrapper = dict(optimizer=dict(lr=5e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters,
         eta_min=5e-5)
]
