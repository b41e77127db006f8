"""The GLIDE model: prompts to images with classifier-free guidance, the
64->256 cascade and inpainting, as an mmengine ``BaseModel``."""
import math
import os
from contextlib import contextmanager, nullcontext
from copy import deepcopy
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.dist import is_main_process
from mmengine.model import BaseModel
from tqdm import tqdm

from mmagic.registry import DIFFUSION_SCHEDULERS, MODELS
from ..checks import check_float, check_int, describe
from .checkpoint import check_state_dict
from .base_scheduler import GlideBaseScheduler
from .diffusion import hybrid_loss, min_snr_weight, space_timesteps
from .text2im_unet import Text2ImUNet
from .tokenizer import GlideTokenizer

ModelType = Union[dict, nn.Module]
Prompts = Union[str, Sequence[str]]

# MMagic's release configs name mmagic's own DDIM scheduler; GLIDE samples
# with ours, which reproduces the reference.
_SCHEDULER_ALIASES = {'EditDDIMScheduler': 'GlideDDIMScheduler'}
_FOREIGN_SCHEDULER_ARGS = ('set_alpha_to_one', 'steps_offset', 'trained_betas',
                           'beta_start', 'beta_end', 'rescale_betas_zero_snr')


def build_scheduler(cfg) -> GlideBaseScheduler:
    """Build a GLIDE sampler from its config (or check a built one).

    MMagic's released configs name ``EditDDIMScheduler`` with diffusers'
    DDIM arguments (:data:`_FOREIGN_SCHEDULER_ARGS`); the alias is mapped to
    ``GlideDDIMScheduler`` and those arguments, meaningless to GLIDE's own
    process, are dropped for every sampler type, so that a config's ``type``
    can be swapped for another sampler (``--sampler``, the web demo).

    Args:
        cfg (dict | GlideBaseScheduler): A ``DIFFUSION_SCHEDULERS`` config,
            or a built scheduler.

    Returns:
        GlideBaseScheduler: The sampler.
    """
    if not isinstance(cfg, dict):
        scheduler = cfg
    else:
        cfg = deepcopy(cfg)
        cfg['type'] = _SCHEDULER_ALIASES.get(cfg.get('type'), cfg.get('type'))
        for key in _FOREIGN_SCHEDULER_ARGS:
            cfg.pop(key, None)
        scheduler = DIFFUSION_SCHEDULERS.build(cfg)
    if not isinstance(scheduler, GlideBaseScheduler):
        raise TypeError('GLIDE needs one of its own schedulers '
                        '(GlideAncestralScheduler, GlideDDIMScheduler, '
                        'GlideDPMSolverScheduler), got '
                        f'{type(scheduler).__name__}')
    return scheduler


def quantize_8bit(x: torch.Tensor) -> torch.Tensor:
    """Round images in [-1, 1] to the 256 levels of an 8-bit image, as the
    reference does before handing the base sample to the upsampler."""
    return ((x + 1) * 127.5).round() / 127.5 - 1


def cast_network(net: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Cast a UNet's weights to ``dtype``, keeping GroupNorm and LayerNorm
    in float32 (the reference's mixed precision)."""
    net.to(dtype)
    for m in net.modules():
        if isinstance(m, (nn.GroupNorm, nn.LayerNorm)):
            m.float()
    return net


def classifier_free_guidance(out: torch.Tensor, scale: float,
                             channels: int) -> torch.Tensor:
    """Combine the network's outputs for a ``[cond, uncond]`` batch: the
    prediction (eps or v, the first ``channels``) becomes ``uncond + scale *
    (cond - uncond)``, the variance values are the conditional half's.

    Args:
        out (Tensor): (2B, 2C, H, W), conditional rows first.
        scale (float): The guidance scale (1: the conditional output).
        channels (int): C, the image channels.

    Returns:
        Tensor: (B, 2C, H, W).
    """
    cond_out, uncond_out = out.chunk(2)
    pred = uncond_out[:, :channels] + scale * (
        cond_out[:, :channels] - uncond_out[:, :channels])
    return torch.cat([pred, cond_out[:, channels:]], dim=1)


@dataclass
class SamplingInputs:
    """:meth:`Glide.infer`'s arguments, checked and normalised by
    :meth:`Glide.check_inputs`."""
    prompts: List[str]
    uncond: List[str]  # the unconditional half's prompts
    batch: int
    guidance_scale: float
    classifier_scale: float
    steps: Optional[Union[int, str]]  # None: the scheduler's default
    steps_up: Optional[Union[int, str]]
    upsample_temp: float
    out_size: int
    generator: Optional[torch.Generator]
    latents: torch.Tensor  # the base stage's x_T
    latents_up: Optional[torch.Tensor]  # None: drawn after the base stage
    shape_up: Optional[tuple]
    inpaint: Optional[tuple]  # (image, mask), expanded to the batch


@MODELS.register_module('GLIDE')
@MODELS.register_module()
class Glide(BaseModel):
    """GLIDE (Nichol et al., 2022): text-guided diffusion.

    Args:
        unet (dict | nn.Module): The base text-conditional UNet (64x64).
        diffusion_scheduler (dict | GlideBaseScheduler): Its sampler; the
            reference recipe is ``GlideAncestralScheduler`` over ``'100'``.
        unet_up (dict | nn.Module, optional): The super-resolution UNet.
        diffusion_scheduler_up (dict, optional): Its sampler; the reference
            recipe is ``GlideDDIMScheduler`` (eta 0) over ``'fast27'``.
            Defaults to a copy of ``diffusion_scheduler`` with the linear
            schedule.
        classifier (dict, optional): A noised-CLIP guide for
            ``classifier_scale`` > 0.
        classifier_scale (float): Default CLIP-guidance scale. Defaults to 0.
        upsample_temp (float): Default temperature of the upsampler's
            starting noise. Defaults to 0.997 (the reference's).
        use_fp16 (bool): Same as ``dtype='float16'`` (MMagic's flag).
        dtype (str, optional): Precision of the UNets' weights and
            activations: ``'float32'`` (default), ``'bfloat16'`` (CPUs with
            AVX512-BF16/AMX, GPUs) or ``'float16'`` (GPUs). Normalisation
            layers and softmax stay in float32, as the reference; the
            samplers' arithmetic is float32. Set it as the config's
            ``model.dtype``, with ``tools/glide_sample.py --dtype``, or by
            calling :meth:`set_precision` on a loaded model.
        channels_last (bool | Sequence[str]): Keep the UNets' convolution
            weights, and so their activations, in channels-last memory
            format: True for both UNets, False for neither, or the networks
            named (``['unet_up']``). A speed setting (the same results within
            float rounding) that depends on the network and the machine:
            on the 2-core CPU of README's Speed section it makes the
            full-size networks' steps 0.90-0.94x as long in bfloat16, and
            the small shapes base model's 1.2-1.6x as long (GroupNorm's
            channels-last kernel is slow with few channels per group);
            ``tools/benchmark.py`` measures both layouts.
            :meth:`set_memory_format` changes it on a loaded model.
            Defaults to False (training keeps the contiguous layout: the
            shapes model trains 1.4x slower channels-last).
        data_preprocessor (dict, optional): mmagic ``DataPreprocessor``.
        strict_load (bool): Loading a state dict (``init_model``,
            ``load_from``, ``load_state_dict``) raises an error naming every
            missing, unexpected or wrongly shaped key. Defaults to True.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 unet: ModelType,
                 diffusion_scheduler: ModelType,
                 unet_up: Optional[ModelType] = None,
                 diffusion_scheduler_up: Optional[ModelType] = None,
                 classifier: Optional[ModelType] = None,
                 classifier_scale: float = 0.0,
                 upsample_temp: float = 0.997,
                 use_fp16: bool = False,
                 dtype: Optional[str] = None,
                 channels_last: Union[bool, Sequence[str]] = False,
                 data_preprocessor: Optional[ModelType] = dict(
                     type='DataPreprocessor', mean=[127.5], std=[127.5]),
                 strict_load: bool = True,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.unet = unet if isinstance(unet, nn.Module) else MODELS.build(unet)
        self.diffusion_scheduler = build_scheduler(diffusion_scheduler)
        self.unet_up = None
        self.diffusion_scheduler_up = None
        if unet_up is not None:
            self.unet_up = unet_up if isinstance(
                unet_up, nn.Module) else MODELS.build(unet_up)
            if diffusion_scheduler_up is None:
                diffusion_scheduler_up = dict(
                    type='GlideDDIMScheduler',
                    beta_schedule='linear',
                    timestep_respacing='fast27')
            self.diffusion_scheduler_up = build_scheduler(
                diffusion_scheduler_up)
        elif diffusion_scheduler_up is not None:
            raise ValueError('diffusion_scheduler_up is set but unet_up is '
                             'not: the upsampler needs a network')
        self.classifier = (
            MODELS.build(classifier) if isinstance(classifier, dict) else
            classifier)
        self.classifier_scale = check_float(classifier_scale,
                                            'classifier_scale', 0)
        self.upsample_temp = check_float(upsample_temp, 'upsample_temp', 0, 1,
                                         low_open=True)
        self.tokenizer = GlideTokenizer(text_ctx=self.unet.text_ctx)
        self.train_cfg = deepcopy(train_cfg) or {}
        self.test_cfg = deepcopy(test_cfg) or {}
        # Checked now, not at the first training step or validation hours
        # later.
        self._check_train_cfg()
        self._check_test_cfg()
        # Training trains the stage's network only: the others get no
        # gradients (and DDP no unused parameters).
        stage = self.train_cfg.get('stage', 'base')
        if self.unet_up is not None or self.classifier is not None:
            for name, attr in self._STAGE_NETWORKS.items():
                if getattr(self, attr) is not None:
                    getattr(self, attr).requires_grad_(name == stage)
        if use_fp16 or dtype is not None:
            self.set_precision('float16' if use_fp16 else dtype)
        self.set_memory_format(channels_last)
        self.strict_load = strict_load
        self._register_load_state_dict_pre_hook(self._check_loaded_keys)

    def _check_loaded_keys(self, state_dict, prefix, *args):
        """Strict loading, whatever the loader: mmengine's
        ``load_checkpoint`` only warns about mismatching keys."""
        expected = {prefix + k: tuple(v.shape)
                    for k, v in self.state_dict().items()}
        if self.train_cfg.get('init_from_base', False):
            self._widen_first_convs(state_dict, prefix, expected)
        self._match_cascade(state_dict, prefix, expected)
        if not self.strict_load:
            return
        given = {k: v for k, v in state_dict.items() if k.startswith(prefix)}
        check_state_dict(given, expected, what='GLIDE state dict')

    def set_precision(self, dtype: Union[str, torch.dtype]) -> 'Glide':
        """Cast the UNets (not the CLIP guide) to ``dtype``, keeping
        GroupNorm/LayerNorm weights in float32."""
        names = {torch.float32: 'float32', torch.bfloat16: 'bfloat16',
                 torch.float16: 'float16'}
        if dtype not in names and dtype not in names.values():
            raise ValueError("dtype must be 'float32', 'bfloat16' or "
                             f"'float16' (or the torch dtype), got {dtype!r}")
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype)
        for net in (self.unet, self.unet_up):
            if net is not None:
                cast_network(net, dtype)
        return self

    def set_memory_format(
            self, channels_last: Union[bool, Sequence[str]] = True) -> 'Glide':
        """Put the UNets' weights in channels-last or contiguous memory
        format (see the ``channels_last`` argument).

        Returns:
            Glide: self.
        """
        nets = ('unet', 'unet_up')
        if isinstance(channels_last, bool):
            chosen = set(nets) if channels_last else set()
        elif (isinstance(channels_last, (list, tuple))
              and set(channels_last) <= set(nets)):
            chosen = set(channels_last)
        else:
            raise ValueError('channels_last must be True, False or a list of '
                             f"{list(nets)}, got {channels_last!r}")
        for name in nets:
            net = getattr(self, name)
            if net is not None:
                net.to(memory_format=torch.channels_last if name in chosen
                       else torch.contiguous_format)
        return self

    # The network (attribute) each train_cfg.stage trains.
    _STAGE_NETWORKS = dict(base='unet', upsample='unet_up', clip='classifier')

    def _match_cascade(self, state_dict, prefix, expected):
        """The shapes checkpoint holds every network of the cascade
        (``unet.*``, ``unet_up.*``, ``classifier.*``): a model without the
        upsampler or the CLIP guide loads the networks it has; a model that
        trains one of them (``train_cfg.stage`` ``'upsample'`` or
        ``'clip'``) loads a checkpoint without it, which keeps its
        initialisation. Either is logged."""
        from mmengine.logging import print_log
        stage = self.train_cfg.get('stage', 'base')
        for name, attr in self._STAGE_NETWORKS.items():
            if name == 'base':  # every model has one
                continue
            key = prefix + attr + '.'
            in_checkpoint = [k for k in state_dict if k.startswith(key)]
            if getattr(self, attr) is None and in_checkpoint:
                for k in in_checkpoint:
                    del state_dict[k]
                print_log(f'the checkpoint\'s {attr} ({len(in_checkpoint)} '
                          f'{attr}.* tensors) is not loaded: this model has '
                          f'no {attr}', logger='current')
            elif (getattr(self, attr) is not None and not in_checkpoint
                  and stage == name):
                for k in [k for k in expected if k.startswith(key)]:
                    del expected[k]
                print_log(f'the checkpoint has no {attr}: it starts from its '
                          f'initialisation (train_cfg.stage={name!r})',
                          logger='current')

    @staticmethod
    def _widen_first_convs(state_dict, prefix, expected):
        """Inpainting fine-tuning from a base checkpoint: the first conv of
        each UNet gets zero weights for the extra (image, mask) channels."""
        from mmengine.logging import print_log
        for net in ('unet', 'unet_up'):
            key = f'{prefix}{net}.in_blocks.0.0.weight'
            if key not in state_dict or key not in expected:
                continue
            w = state_dict[key]
            want = expected[key]
            if w.dim() == 4 and w.shape[1] < want[1] and \
                    w.shape[0] == want[0]:
                pad = w.new_zeros(w.shape[0], want[1] - w.shape[1],
                                  *w.shape[2:])
                if net == 'unet_up':  # x, (image, mask), then low_res
                    c = w.shape[1] // 2
                    state_dict[key] = torch.cat([w[:, :c], pad, w[:, c:]], 1)
                else:
                    state_dict[key] = torch.cat([w, pad], dim=1)
                print_log(f'{key}: {w.shape[1]} -> {want[1]} input channels '
                          '(new ones zero-initialised)', logger='current')

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def is_inpainting(self) -> bool:
        return self.unet.takes_inpaint

    # ------------------------------------------------------------- text
    def encode_prompts(self, unet: Text2ImUNet, prompts: Sequence[str],
                       uncond_prompts: Optional[Sequence[str]] = None
                       ) -> dict:
        """Tokenize and encode prompts once for a whole sampling run.

        Args:
            unet: The network whose text side encodes.
            prompts: One prompt per sample.
            uncond_prompts: For classifier-free guidance, the prompts of the
                unconditional half (the empty prompt, or negative prompts);
                the batch is laid out ``[cond..., uncond...]``.

        Returns:
            dict: :meth:`Text2ImUNet.encode_text`'s output.
        """
        rows = list(prompts) + list(uncond_prompts or [])
        tokens, mask = self.tokenizer(rows, device=self.device)
        return unet.encode_text(tokens, mask)

    # ---------------------------------------------------------- sampling
    def denoise(self,
                unet: Text2ImUNet,
                scheduler: GlideBaseScheduler,
                x: torch.Tensor,
                text: dict,
                guidance_scale: Optional[float] = None,
                cond: Optional[Dict[str, torch.Tensor]] = None,
                denoised_fn: Optional[Callable] = None,
                generator: Optional[torch.Generator] = None,
                step_noise: Optional[Sequence[torch.Tensor]] = None,
                guidance_fn: Optional[Callable] = None,
                callback: Optional[Callable] = None) -> torch.Tensor:
        """Run one stage's sampling loop over ``scheduler.timesteps``.

        Args:
            unet: The stage's network.
            scheduler: The stage's sampler (timesteps already set).
            x (Tensor): x_T, (B, C, H, W).
            text (dict): From :meth:`encode_prompts`: batch B without
                guidance, 2B ``[cond, uncond]`` with guidance.
            guidance_scale (float, optional): Classifier-free guidance on the
                prediction (variance channels of the conditional half passed
                through); None for no guidance.
            cond (dict, optional): Extra network inputs of batch B
                (``low_res``, ``inpaint_image``, ``inpaint_mask``).
            denoised_fn (callable, optional): Applied to each x_0 prediction.
            generator (torch.Generator, optional): Source of step noise.
            step_noise (Sequence[Tensor], optional): Explicit noise for each
                step, counted from the noisiest (tests inject the
                reference's).
            guidance_fn (callable, optional): ``(x, t) -> grad`` classifier
                guidance gradient, already scaled.
            callback (callable, optional): Called after each step as
                ``callback(i, t, x, pred_xstart)`` (step index, timestep, the
                new sample, the step's x_0 prediction), as k-diffusion's and
                diffusers' loops do: progress bars, previews, trajectories.

        Returns:
            Tensor: x_0, (B, C, H, W).
        """
        cond = cond or {}
        guided = guidance_scale is not None
        if guided:
            cond2 = {k: torch.cat([v, v]) for k, v in cond.items()}
        for i, t in enumerate(scheduler.timesteps.tolist()):
            if guided:
                out = classifier_free_guidance(
                    unet(torch.cat([x, x]), t, text=text, **cond2),
                    guidance_scale, x.shape[1])
            else:
                out = unet(x, t, text=text, **cond)
            grad = guidance_fn(x, t) if guidance_fn is not None else None
            noise = step_noise[i] if step_noise is not None else None
            step = scheduler.step(
                out, t, x, noise=noise, generator=generator,
                denoised_fn=denoised_fn, guidance_grad=grad)
            x = step['prev_sample']
            if not torch.isfinite(x).all():
                raise FloatingPointError(
                    f'sampling produced NaN/Inf at step {i + 1} (timestep '
                    f'{t}); try float32, fewer guidance or another sampler')
            if callback is not None:
                callback(i, t, x, step['pred_xstart'])
        return x

    @torch.no_grad()
    def infer(self,
              init_image: Optional[torch.Tensor] = None,
              prompt: Optional[Prompts] = None,
              batch_size: Optional[int] = None,
              guidance_scale: float = 3.0,
              num_inference_steps: Optional[Union[int, str]] = None,
              labels: Optional[torch.Tensor] = None,
              classifier_scale: Optional[float] = None,
              show_progress: bool = False,
              num_inference_steps_up: Optional[Union[int, str]] = None,
              mask: Optional[torch.Tensor] = None,
              latents: Optional[torch.Tensor] = None,
              latents_up: Optional[torch.Tensor] = None,
              seed: Optional[int] = None,
              generator: Optional[torch.Generator] = None,
              upsample_temp: Optional[float] = None,
              negative_prompt: Optional[Prompts] = None,
              height: Optional[int] = None,
              width: Optional[int] = None,
              return_low_res: bool = False,
              callback: Optional[Callable[[int, int], None]] = None
              ) -> Dict[str, torch.Tensor]:
        """Generate images from prompts (the MMagic Quick Start call).

        Numbers may be Python numbers, numpy scalars or 0-d tensors. Every
        argument is checked before anything is sampled; a bad one raises an
        error naming it and the accepted range.

        Args:
            init_image (Tensor, optional): With ``mask``: the image to
                inpaint, (B or 1, 3, H, W) in [-1, 1] at the base or the
                upsampler's resolution. Without ``mask``: the starting noise
                (as in MMagic; ``latents`` is the clearer name).
            prompt (str | list[str]): One prompt for the batch, or one per
                sample. The empty string samples unconditionally.
            batch_size (int, optional): Samples to make. Defaults to the
                number of prompts (1 for a string).
            guidance_scale (float): Classifier-free guidance scale (>= 0);
                1 disables guidance (one network pass per step).
            num_inference_steps (int | str, optional): Base sampler steps in
                [1, 1000], or a respacing string (``'100'``, ``'ddim50'``,
                ``'fast27'``). Defaults to the scheduler's configuration.
            labels (Tensor, optional): Must be None (MMagic's signature; CLIP
                guidance guides towards the prompt).
            classifier_scale (float, optional): CLIP-guidance scale (>= 0);
                needs a ``classifier``. Defaults to the model's.
            show_progress (bool): Show a progress bar over all stages.
            num_inference_steps_up (int | str, optional): Upsampler steps.
                Defaults to its configuration (``'fast27'``).
            mask (Tensor, optional): Inpainting mask (B or 1, 1, H, W) in
                [0, 1], 1 = keep ``init_image``, 0 = generate.
            latents (Tensor, optional): Base starting noise (B, 3, h, w).
            latents_up (Tensor, optional): Upsampler starting noise, before
                ``upsample_temp``.
            seed (int, optional): Seed in [0, 2**64 - 1] for all random draws
                (bit-identical results on CPU).
            generator (torch.Generator, optional): Random source on the
                model's device type; overrides ``seed``.
            upsample_temp (float, optional): Upsampler noise temperature in
                (0, 1]. Defaults to the model's (0.997).
            negative_prompt (str | list[str], optional): Replaces the empty
                prompt of the guidance's unconditional half.
            height, width (int, optional): Output size; must be the model's
                (accepted for mmagic's ``Text2ImageInferencer``).
            return_low_res (bool): Also return the base stage's samples.
            callback (callable, optional): Called after every step of every
                stage as ``callback(done, total)`` (steps done so far, steps
                of all stages): progress for a UI. An exception it raises
                stops sampling and propagates (how a UI cancels).

        Returns:
            dict: ``samples`` (B, 3, H, W) float32 in [-1, 1]; with
            ``return_low_res``, ``low_res`` too.
        """
        # 1. Check and normalise every argument before sampling anything.
        a = self.check_inputs(
            init_image=init_image, prompt=prompt, batch_size=batch_size,
            guidance_scale=guidance_scale,
            num_inference_steps=num_inference_steps, labels=labels,
            classifier_scale=classifier_scale,
            num_inference_steps_up=num_inference_steps_up, mask=mask,
            latents=latents, latents_up=latents_up, seed=seed,
            generator=generator, upsample_temp=upsample_temp,
            negative_prompt=negative_prompt, height=height, width=width)
        if callback is not None and not callable(callback):
            raise TypeError('callback must be a function called as '
                            f'callback(done, total), got {callback!r}')
        # 2. Set each stage's timesteps; the progress bar counts them all.
        self.diffusion_scheduler.set_timesteps(a.steps)
        total = len(self.diffusion_scheduler.timesteps)
        if self.unet_up is not None:
            self.diffusion_scheduler_up.set_timesteps(a.steps_up)
            total += len(self.diffusion_scheduler_up.timesteps)
        show = show_progress and is_main_process()
        bar = tqdm(total=total, desc='GLIDE base', disable=not show)
        done = 0

        def on_step(*_):
            nonlocal done
            done += 1
            bar.update(1)
            if callback is not None:
                callback(done, total)

        try:
            with bar if show else nullcontext():
                # 3. The base model from noise, classifier-free guided (and
                #    CLIP guided with a classifier_scale).
                low_res = self._sample_stage('base', a, a.latents, on_step)
                x = low_res
                # 4. The upsampler from the 8-bit base sample, unguided.
                if self.unet_up is not None:
                    bar.set_description('GLIDE upsample')
                    noise = self._start_noise(a.latents_up, a.shape_up,
                                              a.generator, self.device)
                    x = self._sample_stage('upsample', a,
                                           noise * a.upsample_temp, on_step,
                                           quantize_8bit(low_res))
        except MemoryError as err:  # Python's own has no message
            raise MemoryError(
                f'out of memory sampling {a.batch} images of {a.out_size}x'
                f'{a.out_size} on {self.device}: use a smaller batch_size'
            ) from err
        # 5. Images in [-1, 1], float32.
        result = dict(samples=x.float().clamp(-1, 1))
        if return_low_res:
            result['low_res'] = (low_res.float() if self.unet_up is not None
                                 else result['samples'])
        return result

    def _sample_stage(self, stage: str, a: 'SamplingInputs',
                      x: torch.Tensor, on_step: Callable,
                      low_res: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Sample one stage of the cascade (timesteps already set).

        Args:
            stage (str): ``'base'`` or ``'upsample'``.
            a (SamplingInputs): From :meth:`check_inputs`.
            x (Tensor): The stage's x_T.
            on_step (callable): Called once after every step.
            low_res (Tensor, optional): The upsampler's 8-bit low-res input.

        Returns:
            Tensor: The stage's x_0.
        """
        base = stage == 'base'
        unet = self.unet if base else self.unet_up
        scheduler = self.diffusion_scheduler if base else \
            self.diffusion_scheduler_up
        guided = base and a.guidance_scale != 1.0
        text = self.encode_prompts(unet, a.prompts,
                                   a.uncond if guided else None)
        cond, paste = {}, None
        if unet.takes_inpaint:
            cond, paste = self._inpaint_inputs(a.inpaint, unet.image_size)
        if unet.takes_low_res:
            cond['low_res'] = low_res
        guidance_fn = None
        if base and a.classifier_scale > 0:
            guidance_fn = self.classifier.guidance_fn(a.prompts,
                                                      a.classifier_scale)
        try:
            return self.denoise(
                unet, scheduler, x, text,
                guidance_scale=a.guidance_scale if guided else None,
                cond=cond, denoised_fn=paste, generator=a.generator,
                guidance_fn=guidance_fn,
                callback=on_step)
        except FloatingPointError as err:
            raise FloatingPointError(f'{stage} {err}') from None

    def check_inputs(self, init_image=None, prompt=None, batch_size=None,
                     guidance_scale=3.0, num_inference_steps=None,
                     labels=None, classifier_scale=None,
                     num_inference_steps_up=None, mask=None, latents=None,
                     latents_up=None, seed=None, generator=None,
                     upsample_temp=None, negative_prompt=None, height=None,
                     width=None) -> 'SamplingInputs':
        """Check :meth:`infer`'s arguments and normalise them (see there).

        Raises an error naming the first bad argument and what it accepts,
        so that sampling itself no longer fails on an input. Draws the base
        stage's starting noise (from ``generator`` or ``seed``); the
        upsampler's is drawn after the base stage, from the same source.

        Returns:
            SamplingInputs: the normalised arguments.
        """
        if batch_size is not None:
            batch_size = check_int(batch_size, 'batch_size', 1)
        guidance_scale = self._check_scale(guidance_scale, 'guidance_scale')
        guided = guidance_scale != 1.0
        if batch_size is not None:  # before building a list of prompts
            self._check_memory(batch_size, guided)
        prompts = self._check_prompts(prompt, batch_size, 'prompt')
        batch = len(prompts)
        uncond = (self._check_prompts(negative_prompt, batch,
                                      'negative_prompt')
                  if negative_prompt is not None else [''] * batch)
        classifier_scale = self._check_scale(
            self.classifier_scale if classifier_scale is None else
            classifier_scale, 'classifier_scale')
        if classifier_scale > 0 and self.classifier is None:
            raise ValueError('classifier_scale > 0 needs a model with a '
                             '`classifier` (CLIP guidance); this one has none')
        if labels is not None:
            raise ValueError('labels are not used: CLIP guidance guides '
                             'towards the prompt (pass labels=None)')
        steps = self._check_steps(
            num_inference_steps, 'num_inference_steps',
            self.diffusion_scheduler.num_train_timesteps)
        if self.unet_up is None:
            for name, value in (('num_inference_steps_up',
                                 num_inference_steps_up),
                                ('latents_up', latents_up),
                                ('upsample_temp', upsample_temp)):
                if value is not None:
                    raise ValueError(f'{name} is set but this model has no '
                                     'upsampler (unet_up)')
        steps_up = self._check_steps(
            num_inference_steps_up, 'num_inference_steps_up',
            (self.diffusion_scheduler_up or
             self.diffusion_scheduler).num_train_timesteps)
        upsample_temp = check_float(
            self.upsample_temp if upsample_temp is None else upsample_temp,
            'upsample_temp', 0, 1, low_open=True)
        base_size = self.unet.image_size
        out_size = (self.unet_up.image_size
                    if self.unet_up is not None else base_size)
        for name, value in (('height', height), ('width', width)):
            if value is not None and not self._equals(value, out_size):
                raise ValueError(f'{name} must be {out_size} for this model '
                                 f'(or None), got {describe(value)}')
        device = self.device
        generator = self._check_generator(generator, seed, device)
        self._check_memory(batch, guided)

        shape = (batch, self.unet.image_channels, base_size, base_size)
        if mask is None and init_image is not None:
            latents = self._init_image_as_latents(init_image, latents, shape)
            init_image = None
        latents = self._check_latents(latents, 'latents', shape)
        shape_up = None
        if self.unet_up is not None:  # checked now, not after the base stage
            shape_up = (batch, self.unet_up.image_channels, out_size,
                        out_size)
            latents_up = self._check_latents(latents_up, 'latents_up',
                                             shape_up)
        inpaint = self._check_inpaint(init_image, mask, batch, base_size,
                                      out_size)
        latents = self._start_noise(latents, shape, generator, device)
        return SamplingInputs(
            prompts=prompts, uncond=uncond, batch=batch,
            guidance_scale=guidance_scale, classifier_scale=classifier_scale,
            steps=steps, steps_up=steps_up, upsample_temp=upsample_temp,
            out_size=out_size, generator=generator, latents=latents,
            latents_up=latents_up, shape_up=shape_up, inpaint=inpaint)

    # ------------------------------------------------------- validation
    # train_cfg keys (Glide.loss, _step_random_state, _check_loaded_keys).
    _TRAIN_CFG_KEYS = ('stage', 'p_uncond', 'vb_weight', 'seed',
                       'min_snr_gamma', 'min_snr_floor', 'low_freq_noise',
                       'init_from_base')
    # infer's arguments that test_cfg may set (predict passes the prompts).
    _TEST_CFG_KEYS = ('guidance_scale', 'num_inference_steps',
                      'num_inference_steps_up', 'classifier_scale', 'seed',
                      'upsample_temp', 'negative_prompt', 'show_progress')

    def _check_train_cfg(self) -> None:
        cfg = self.train_cfg
        unknown = sorted(set(cfg) - set(self._TRAIN_CFG_KEYS))
        if unknown:
            raise ValueError(f'unknown train_cfg keys {unknown}; known: '
                             f'{list(self._TRAIN_CFG_KEYS)}')
        stage = cfg.get('stage', 'base')
        if stage not in ('base', 'upsample', 'clip'):
            raise ValueError("train_cfg.stage must be 'base', 'upsample' or "
                             f"'clip', got {stage!r}")
        if stage == 'upsample' and self.unet_up is None:
            raise ValueError("train_cfg.stage='upsample' needs unet_up")
        if stage == 'clip' and self.classifier is None:
            raise ValueError("train_cfg.stage='clip' needs a classifier (a "
                             'NoisedCLIP)')
        check_float(cfg.get('p_uncond', 0.2), 'train_cfg.p_uncond', 0, 1)
        check_float(cfg.get('vb_weight', 0.001), 'train_cfg.vb_weight', 0)
        self._check_seed(cfg.get('seed', 0), 'train_cfg.seed')
        if cfg.get('min_snr_gamma') is not None:
            check_float(cfg['min_snr_gamma'], 'train_cfg.min_snr_gamma', 0,
                        low_open=True)
        check_float(cfg.get('low_freq_noise', 0.0), 'train_cfg.low_freq_noise',
                    0, 1)
        if cfg.get('min_snr_floor') and stage != 'clip':
            check_float(cfg['min_snr_floor'], 'train_cfg.min_snr_floor', 0)
            scheduler = (self.diffusion_scheduler if stage == 'base' else
                         self.diffusion_scheduler_up)
            if scheduler.prediction_type != 'v':
                raise ValueError(
                    'train_cfg.min_snr_floor needs a v-predicting network '
                    f"(the {stage} scheduler's prediction_type='v'): with "
                    'eps its weight grows as 1 / SNR, without bound at high '
                    'noise')

    def _check_test_cfg(self) -> None:
        """The sampling settings of validation and test, checked when the
        model is built."""
        cfg = self.test_cfg
        unknown = sorted(set(cfg) - set(self._TEST_CFG_KEYS))
        if unknown:
            raise ValueError(f'unknown test_cfg keys {unknown}; known: '
                             f'{list(self._TEST_CFG_KEYS)} (infer arguments)')
        for key in ('guidance_scale', 'classifier_scale'):
            if key in cfg:
                self._check_scale(cfg[key], f'test_cfg.{key}')
        if cfg.get('classifier_scale', 0) and self.classifier is None:
            raise ValueError('test_cfg.classifier_scale > 0 needs a '
                             '`classifier` (CLIP guidance)')
        for key in ('num_inference_steps', 'num_inference_steps_up'):
            self._check_steps(cfg.get(key), f'test_cfg.{key}')
        if cfg.get('seed') is not None:
            self._check_seed(cfg['seed'], 'test_cfg.seed')
        if self.unet_up is None:
            for key in ('num_inference_steps_up', 'upsample_temp'):
                if cfg.get(key) is not None:
                    raise ValueError(f'test_cfg.{key} is set but this model '
                                     'has no upsampler (unet_up)')
        if cfg.get('upsample_temp') is not None:
            check_float(cfg['upsample_temp'], 'test_cfg.upsample_temp', 0, 1,
                        low_open=True)

    @staticmethod
    def _check_prompts(prompt, batch_size, name) -> List[str]:
        if batch_size is not None:
            batch_size = check_int(batch_size, 'batch_size', 1)
        if prompt is None:
            raise ValueError(f'{name} is required: a str or a list of str '
                             '("" samples unconditionally)')
        if isinstance(prompt, str):
            return [prompt] * (batch_size or 1)
        if not isinstance(prompt, (list, tuple)) or not prompt:
            raise TypeError(f'{name} must be a str or a non-empty list of '
                            f'str, got {describe(prompt)}')
        for p in prompt:
            if not isinstance(p, str):
                raise TypeError(f'{name} must contain only str, got '
                                f'{type(p).__name__}')
        prompt = list(prompt)
        if batch_size is not None and len(prompt) != batch_size:
            if len(prompt) != 1:
                raise ValueError(
                    f'{name} has {len(prompt)} prompts but batch_size is '
                    f'{batch_size}: give one prompt or one per sample')
            prompt = prompt * batch_size
        return prompt

    @staticmethod
    def _check_scale(value, name) -> float:
        return check_float(value, name, 0)

    @staticmethod
    def _check_steps(value, name, num_train_timesteps: int = 1000
                     ) -> Optional[Union[int, str]]:
        """None, an int in [1, T] or a respacing string (checked), with T
        the training process's steps."""
        if value is None:
            return None
        expected = (f'{name} must be an int in [1, {num_train_timesteps}] or '
                    "a respacing string ('100', 'fast27', 'ddim50', "
                    "'10,10,3,2,2')")
        if isinstance(value, str):
            try:
                space_timesteps(num_train_timesteps, value)
            except (ValueError, TypeError) as err:
                raise ValueError(f'{expected}, got {value!r}: {err}') from None
            return value
        try:
            return check_int(value, name, 1, num_train_timesteps)
        except ValueError:
            raise ValueError(f'{expected}, got {describe(value)}') from None

    @staticmethod
    def _check_seed(seed, name='seed') -> int:
        if isinstance(seed, (str, bytes)) or seed is None:
            raise TypeError(f'{name} must be an int in [0, 2**64 - 1], got '
                            f'{describe(seed)}')
        return check_int(seed, name, 0, 2**64 - 1, high_text='2**64 - 1')

    def _check_generator(self, generator, seed, device):
        """The generator to sample with: ``generator``, or one seeded with
        ``seed``, or None (torch's global one)."""
        if generator is None:
            if seed is None:
                return None
            seed = self._check_seed(seed)
            return torch.Generator(device).manual_seed(seed)
        if not isinstance(generator, torch.Generator):
            raise TypeError('generator must be a torch.Generator (or None: '
                            f'use seed), got {describe(generator)}')
        if generator.device.type != device.type:
            raise ValueError(f'generator is on {generator.device} but the '
                             f'model on {device}: make it with '
                             f"torch.Generator('{device.type}')")
        return generator

    @staticmethod
    def _equals(value, target: int) -> bool:
        try:
            return check_int(value, 'value', 1) == target
        except ValueError:
            return False

    def _check_memory(self, batch: int, guided: bool) -> None:
        """Refuse a batch whose samples and text features alone outgrow the
        device's memory, before anything is allocated."""
        per_sample = 0
        for i, net in enumerate((self.unet, self.unet_up)):
            if net is None:
                continue
            rows = 2 if guided and i == 0 else 1  # [cond, uncond]
            per_sample += 4 * rows * (net.image_channels * net.image_size**2
                                      + net.text_ctx * net.xf_width)
        total = _device_memory(self.device)
        need = batch * per_sample
        if total is not None and need > total:
            raise MemoryError(
                f'batch_size={batch} needs at least {need / 2**30:,.1f} GiB '
                'for its samples and text features alone, more than the '
                f'{total / 2**30:,.1f} GiB of {self.device}: sample in '
                'smaller batches')

    @staticmethod
    def _check_latents(latents, name, shape) -> Optional[torch.Tensor]:
        """None or a finite tensor of ``shape``."""
        if latents is None:
            return None
        if not torch.is_tensor(latents):
            hint = (' (torch.from_numpy converts an array)'
                    if hasattr(latents, '__array__') else '')
            raise TypeError(f'{name} must be a torch.Tensor of shape {shape}'
                            f', got {describe(latents)}{hint}')
        if tuple(latents.shape) != shape:
            raise ValueError(f'{name} must be a tensor of shape {shape}, got '
                             f'shape {tuple(latents.shape)}')
        if latents.device.type == 'meta':
            raise ValueError(f'{name} is on the meta device: it has no data')
        if not latents.is_floating_point():
            raise TypeError(f'{name} must be floating-point noise, got '
                            f'{latents.dtype}')
        if not torch.isfinite(latents).all():
            raise ValueError(f'{name} contains NaN/Inf')
        return latents

    @staticmethod
    def _init_image_as_latents(init_image, latents, shape):
        """MMagic's meaning of ``init_image`` without ``mask``: the starting
        noise, (B, C, H, W) or MMagic's [cond, uncond] (2B, C, H, W)."""
        if latents is not None:
            return latents
        batch = shape[0]
        if torch.is_tensor(init_image) and init_image.dim() == 4 and \
                init_image.shape[0] == 2 * batch:
            init_image = init_image[:batch]
        if not torch.is_tensor(init_image) or \
                tuple(init_image.shape) != shape:
            raise ValueError(
                'init_image without mask is the starting noise (as '
                f'latents) and must be a tensor of shape {shape}, got '
                f'{describe(init_image)}; to inpaint an image, pass mask too '
                '(inpainting configs)')
        return init_image

    @staticmethod
    def _start_noise(latents, shape, generator, device):
        if latents is None:
            return torch.randn(shape, generator=generator, device=device)
        return latents.to(device=device, dtype=torch.float32)

    def _check_inpaint(self, image, mask, batch, base_size, out_size):
        if mask is None:
            return None
        if not self.is_inpainting:
            raise ValueError('mask is given but this model is not an '
                             'inpainting model (use the *_inpaint config)')
        if image is None:
            raise ValueError('mask needs init_image, the image to inpaint')
        for name, t, c in (('init_image', image, 3), ('mask', mask, 1)):
            if not torch.is_tensor(t) or t.dim() != 4 or t.shape[1] != c \
                    or t.shape[0] not in (1, batch) \
                    or t.shape[2] != t.shape[3] \
                    or t.shape[2] not in (base_size, out_size):
                raise ValueError(
                    f'{name} must be (B or 1, {c}, H, H) with B={batch} and '
                    f'H in {sorted({base_size, out_size})}, got '
                    f'{describe(t)}')
            if t.device.type == 'meta':
                raise ValueError(f'{name} is on the meta device: it has no '
                                 'data')
            if not torch.isfinite(t).all():
                raise ValueError(f'{name} contains NaN/Inf')
        if image.min() < -1 or image.max() > 1:
            raise ValueError('init_image values must be in [-1, 1], got '
                             f'[{image.min():.3g}, {image.max():.3g}]')
        if mask.min() < 0 or mask.max() > 1:
            raise ValueError('mask values must be in [0, 1] (1 = keep), got '
                             f'[{mask.min():.3g}, {mask.max():.3g}]')
        device = self.device
        return (image.float().to(device).expand(batch, -1, -1, -1),
                mask.float().to(device).expand(batch, -1, -1, -1))

    @staticmethod
    def _inpaint_inputs(inpaint, size):
        """Network inputs and the x_0 paste-back for one stage's size."""
        if inpaint is None:
            return {}, None
        image, mask = inpaint
        if image.shape[-1] != size:
            image = nn.functional.interpolate(
                image, (size, size), mode='bicubic',
                align_corners=False).clamp(-1, 1)
        if mask.shape[-1] != size:
            mask = nn.functional.interpolate(mask, (size, size),
                                             mode='nearest')

        def paste(x0):
            return x0 * (1 - mask) + image * mask

        return dict(inpaint_image=image, inpaint_mask=mask), paste

    # ----------------------------------------------------- mmengine API
    def forward(self,
                inputs: Optional[torch.Tensor] = None,
                data_samples: Optional[list] = None,
                mode: str = 'tensor'):
        """mmengine's entry point.

        Args:
            inputs (Tensor): Images (B, 3, H, W) in [-1, 1] (after the data
                preprocessor).
            data_samples (list[DataSample]): Each with its ``prompt``.
            mode (str): ``'loss'`` (training losses), ``'predict'`` (samples
                for the prompts, as DataSamples with ``fake_img``) or
                ``'tensor'`` (the samples as a tensor).
        """
        if mode == 'loss':
            with self._step_random_state():
                return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.infer(prompt=self._prompts_of(data_samples),
                              **self._sampling_cfg())['samples']
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got "
                         f'{mode!r}')

    @staticmethod
    def _as_list(data_samples) -> list:
        """mmagic's data preprocessor stacks the batch's samples into one
        DataSample; split it back into one per image."""
        if data_samples is None:
            raise ValueError('data_samples with prompts are required')
        if not isinstance(data_samples, (list, tuple)):
            data_samples = data_samples.split(allow_nonseq_value=True)
        return list(data_samples)

    def _prompts_of(self, data_samples) -> List[str]:
        data_samples = self._as_list(data_samples)
        if not data_samples:
            raise ValueError('data_samples with prompts are required')
        prompts = []
        for ds in data_samples:
            prompt = ds.get('prompt') if hasattr(ds, 'get') else None
            if not isinstance(prompt, str):
                raise ValueError('every data sample needs a str `prompt`, '
                                 f'got {prompt!r}')
            prompts.append(prompt)
        return prompts

    # ----------------------------------------------------------- training
    @contextmanager
    def _step_random_state(self):
        """Draw a training step's randomness (timesteps, noise, caption
        dropout, masks, dropout layers) from a seed derived from
        ``train_cfg.seed``, the iteration and the rank, so that a resumed run
        continues exactly as an uninterrupted one. Entered by ``forward``
        with ``mode='loss'``, which both a plain and a DDP-wrapped model
        run."""
        from mmengine import MessageHub
        from mmengine.dist import get_rank
        it = MessageHub.get_current_instance().get_info('iter', 0)
        seed = (int(self.train_cfg.get('seed', 0)) * 1_000_003 +
                int(it) * 1009 + get_rank()) % 2**63
        devices = [self.device] if self.device.type == 'cuda' else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield

    def loss(self, inputs: torch.Tensor, data_samples: list) -> dict:
        """GLIDE's objective: eps MSE plus the variational bound term of the
        learned-range variance (improved DDPM's hybrid loss: the bound is
        weighted ``vb_weight`` x T, with the eps output frozen in it). With a
        scheduler whose ``prediction_type`` is ``'v'``, the MSE is the
        velocity's instead of eps'.

        ``train_cfg``: ``stage`` (``'base'``, ``'upsample'`` or ``'clip'``:
        :meth:`clip_loss`), ``p_uncond``
        (caption dropout for classifier-free guidance, 0.2), ``vb_weight``
        (0.001), ``seed``, ``min_snr_gamma`` (None: the paper's
        objective), ``min_snr_floor`` (0) and ``low_freq_noise`` (0: the
        paper's white noise). Inpainting networks get random rectangle masks.

        ``min_snr_gamma`` = g weights each sample's eps MSE by
        ``min(SNR(t), g) / SNR(t)`` (v MSE: ``/ (SNR(t) + 1)``; Min-SNR-g,
        Hang et al., 2023): the low-noise steps, whose large eps errors
        otherwise dominate the gradient but hardly depend on the caption,
        count less, which makes a small model learn its captions in far
        fewer iterations. ``min_snr_floor`` = f (v only) keeps the x_0
        weight of the noisiest steps at f or more (:func:`min_snr_weight`).

        ``low_freq_noise`` = s draws the training noise from
        :func:`low_frequency_noise`: white noise plus s x noise constant over
        each 1x1, 2x2, 4x4 ... grid of blocks. A small image's mean colour and
        the place of its shape are otherwise readable from x_t almost up to
        t = T (averaged over many pixels, white noise vanishes), so the model
        learns them from x_t instead of from the caption, and at sampling
        reads them from the chance means of the initial noise.
        """
        cfg = self.train_cfg
        self._check_train_cfg()  # train_cfg may have changed since __init__
        stage = cfg.get('stage', 'base')
        if stage == 'clip':
            return self.clip_loss(inputs, self._prompts_of(data_samples))
        unet = self.unet if stage == 'base' else self.unet_up
        scheduler = (self.diffusion_scheduler
                     if stage == 'base' else self.diffusion_scheduler_up)
        process = scheduler.train_process
        x_start = inputs.float()
        if x_start.shape[-1] != unet.image_size:
            raise ValueError(f'training images are {x_start.shape[-1]}px; the '
                             f'{stage} network takes {unet.image_size}px')
        batch, device = x_start.shape[0], x_start.device
        prompts = self._prompts_of(data_samples)
        p_uncond = float(cfg.get('p_uncond', 0.2))
        drop = torch.rand(batch) < p_uncond
        prompts = ['' if d else p for d, p in zip(drop.tolist(), prompts)]
        cond = {}
        if stage == 'upsample':
            low = nn.functional.interpolate(
                x_start, (self.unet.image_size, ) * 2, mode='area')
            cond['low_res'] = quantize_8bit(low)
        if unet.takes_inpaint:
            mask = random_rectangle_masks(batch, unet.image_size, device)
            cond.update(inpaint_image=x_start, inpaint_mask=mask)
        t = torch.randint(0, process.num_timesteps, (batch, ), device=device)
        noise = low_frequency_noise(x_start.shape, device,
                                    float(cfg.get('low_freq_noise', 0.0)))
        x_t = process.q_sample(x_start, t, noise)
        tokens, mask = self.tokenizer(prompts, device=device)
        out = unet(x_t, t, tokens=tokens, mask=mask, **cond).float()
        gamma, floor = cfg.get('min_snr_gamma'), cfg.get('min_snr_floor')
        weight = None
        if gamma is not None or floor:
            weight = min_snr_weight(process, t, gamma,
                                    scheduler.prediction_type, floor or 0)
        mse, vb = hybrid_loss(process, out, x_start, x_t, t, noise,
                              scheduler.prediction_type, weight)
        weight = float(cfg.get('vb_weight', 0.001)) * process.num_timesteps
        return dict(loss_mse=mse.mean(), loss_vb=weight * vb.mean())

    def clip_loss(self, inputs: torch.Tensor, prompts: list) -> dict:
        """``train_cfg.stage='clip'``: the noised CLIP guide's contrastive
        loss (CLIP's symmetric cross-entropy over the batch) between the
        captions and the images noised by the base process at uniform
        timesteps, as GLIDE trained its noised CLIP. Images with the same
        caption are all positives of that caption (targets spread evenly).

        Args:
            inputs (Tensor): (B, 3, H, W) images in [-1, 1], H the guide's
                image size.
            prompts (list[str]): Their captions.

        Returns:
            dict: ``loss_clip``.
        """
        clip = self.classifier
        x_start = inputs.float()
        if x_start.shape[-1] != clip.image_size:
            raise ValueError(f'training images are {x_start.shape[-1]}px; the '
                             f'CLIP guide takes {clip.image_size}px')
        process = self.diffusion_scheduler.train_process
        t = torch.randint(0, process.num_timesteps, (len(x_start), ),
                          device=x_start.device)
        x_t = process.q_sample(x_start, t, torch.randn_like(x_start))
        logits = clip.logit_scale.exp() * (clip.image_embeddings(
            x_t, t) @ clip.text_embeddings(prompts).T)
        same = torch.tensor([[a == b for b in prompts] for a in prompts],
                            dtype=logits.dtype, device=logits.device)
        target = same / same.sum(1, keepdim=True)
        loss = (nn.functional.cross_entropy(logits, target) +
                nn.functional.cross_entropy(logits.T, target)) / 2
        return dict(loss_clip=loss)

    # --------------------------------------------------------- evaluation
    def _sampling_cfg(self) -> dict:
        cfg = dict(self.test_cfg)
        cfg.setdefault('seed', 0)
        return cfg

    @torch.no_grad()
    def predict(self, inputs, data_samples) -> list:
        """Sample one image per data sample's prompt with ``test_cfg``'s
        settings (``guidance_scale``, ``num_inference_steps``, ``seed``...).

        Returns:
            list[DataSample]: each with ``fake_img`` (3, H, W) in [0, 255],
            ``prompt`` and, when ``inputs`` are given, ``gt_img``.
        """
        from mmagic.structures import DataSample
        data_samples = self._as_list(data_samples)
        prompts = self._prompts_of(data_samples)
        samples = self.infer(prompt=prompts, **self._sampling_cfg())
        fake = (samples['samples'] + 1) * 127.5
        outputs = []
        for i, ds in enumerate(data_samples):
            out = DataSample(prompt=prompts[i])
            out.fake_img = fake[i].cpu()
            if inputs is not None:
                out.gt_img = ((inputs[i].float() + 1) * 127.5).cpu()
            outputs.append(out)
        return outputs

    def val_step(self, data) -> list:
        data = self.data_preprocessor(data, False)
        return self.predict(data['inputs'], data['data_samples'])

    def test_step(self, data) -> list:
        return self.val_step(data)


def _device_memory(device: torch.device) -> Optional[int]:
    """Bytes of memory of ``device`` (None when unknown)."""
    if device.type == 'cuda':
        return torch.cuda.get_device_properties(device).total_memory
    if device.type == 'cpu':
        try:
            return os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')
        except (ValueError, OSError, AttributeError):
            return None
    return None


def low_frequency_noise(shape, device, strength: float) -> torch.Tensor:
    """Training noise with extra low frequencies, of unit variance.

    White noise plus ``strength`` x standard normal noise constant over the
    blocks of each grid of 1x1, 2x2, 4x4 ... (side/2)x(side/2) blocks (the
    "pyramid" or multi-resolution noise of Whitaker, 2023, with equal
    weights), the sum divided by ``sqrt(1 + levels * strength**2)``.

    Args:
        shape (tuple): (B, C, H, W) with H == W.
        device: Where to draw.
        strength (float): Standard deviation of each coarse level, >= 0;
            0 gives plain white noise.

    Returns:
        Tensor: noise of ``shape``.
    """
    noise = torch.randn(shape, device=device)
    if strength <= 0:
        return noise
    batch, channels, side = shape[0], shape[1], shape[-1]
    levels, grid = 0, 1
    while grid < side:
        coarse = torch.randn(batch, channels, grid, grid, device=device)
        noise = noise + strength * nn.functional.interpolate(
            coarse, size=tuple(shape[-2:]), mode='nearest')
        levels, grid = levels + 1, grid * 2
    return noise / math.sqrt(1 + levels * strength**2)


def random_rectangle_masks(batch: int, size: int, device) -> torch.Tensor:
    """Inpainting training masks (B, 1, size, size): 1 = keep, with one
    random rectangle (10-60 % of each side) to fill."""
    masks = torch.ones(batch, 1, size, size, device=device)
    for i in range(batch):
        h, w = (int(v) for v in torch.randint(max(1, size // 10),
                                              max(2, size * 6 // 10), (2, )))
        top = int(torch.randint(0, size - h + 1, (1, )))
        left = int(torch.randint(0, size - w + 1, (1, )))
        masks[i, :, top:top + h, left:left + w] = 0
    return masks
