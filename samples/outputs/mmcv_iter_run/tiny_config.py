model = dict(type='TinyNet')
optimizer = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001)
optimizer_config = dict(grad_clip=None)
lr_config = dict(policy='step', step=[3], by_epoch=False)
runner = dict(type='IterBasedRunner', max_iters=16)
checkpoint_config = dict(interval=4, by_epoch=False)
log_config = dict(interval=2, hooks=[dict(type='TextLoggerHook')])
dist_params = dict(backend='nccl')
log_level = 'INFO'
load_from = None
resume_from = None
auto_resume = True
workflow = [('train', 1)]
work_dir = '/mnt/cluster/alice/experiments/outputs/mmcv_iter_run'
gpu_ids = [0]
