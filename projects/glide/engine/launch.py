"""Launching mmengine runs on CPU processes."""
import torch


def prepare_cpu_distributed(cfg, launcher: str) -> None:
    """Make ``launcher='pytorch'`` work without GPUs: mmengine's launcher
    pins each process to a CUDA device, so on a CPU-only machine we start
    the gloo process group ourselves (mmengine then reuses it) and wrap the
    model in DDP without device ids."""
    if launcher == 'none' or torch.cuda.is_available():
        return
    import torch.distributed as dist
    cfg.env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
    cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel',
                                 device_ids=None)
    if launcher == 'pytorch' and not dist.is_initialized():
        dist.init_process_group(backend='gloo')
