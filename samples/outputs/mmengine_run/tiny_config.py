default_scope = 'mmengine'
model = dict(type='TinyNet')
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[3], gamma=0.1)]
train_cfg = dict(by_epoch=True, max_epochs=4, val_interval=1)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1))
randomness = dict(seed=0)
resume = False
load_from = None
work_dir = '/mnt/cluster/alice/experiments/outputs/mmengine_run'
