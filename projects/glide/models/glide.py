"""The GLIDE model: prompts to images with classifier-free guidance, the
64->256 cascade and inpainting, as an mmengine ``BaseModel``.

``Glide`` is the thin model: it builds the networks, runs mmengine's
``forward``/``train_step``/``val_step`` and holds the :meth:`Glide.infer`
recipe. The sampling loop is :func:`.sampling.denoise`, the argument checks
:mod:`.sampling_inputs`, the objective :func:`.diffusion.training_losses`,
checkpoint matching :mod:`.checkpoint`.
"""
from contextlib import nullcontext
from copy import deepcopy
from typing import Callable, Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.dist import is_main_process
from mmengine.model import BaseModel
from tqdm import tqdm

from mmagic.registry import MODELS
from ..checks import check_float
from .base_scheduler import build_scheduler
from .checkpoint import check_state_dict, match_cascade, widen_first_convs
from .diffusion import training_losses
from .distillation import DISTILL_STAGES, distill_loss, load_teacher
from .editing import cut_timesteps, noise_image
from .lora import (apply_lora_config, is_adapter_key, load_lora,
                   lora_disabled, remove_lora, save_lora)
from .precision import cast_network, channels_last_names, parse_dtype
from .sampling import (denoise, inpaint_inputs, quantize_8bit, start_noise)
from .sampling_inputs import SamplingInputs, check_inputs, check_test_cfg
from .text2im_unet import Text2ImUNet
from .tokenizer import GlideTokenizer
from .training import (STAGE_NETWORKS, check_train_cfg, low_frequency_noise,
                       random_rectangle_masks, step_random_state)

ModelType = Union[dict, nn.Module]
Prompts = Union[str, Sequence[str]]


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
        channels_last (bool | Sequence[str]): Keep the UNets' weights, and
            so their activations, in channels-last memory format: True for
            both UNets, False for neither, or the networks named
            (``['unet_up']``). A speed setting (the same results within float
            rounding) that depends on the network and the machine
            (docs/speed.md; ``tools/benchmark.py`` measures both layouts).
            :meth:`set_memory_format` changes it on a loaded model. Defaults
            to False (the shapes model trains 1.4x slower channels-last).
        data_preprocessor (dict, optional): mmagic ``DataPreprocessor``.
        strict_load (bool): Loading a state dict (``init_model``,
            ``load_from``, ``load_state_dict``) raises an error naming every
            missing, unexpected or wrongly shaped key. Defaults to True.
        lora_config (dict, optional): Low-rank adapters on the trained
            stage's network (MMagic's spelling): ``rank`` (4), ``scale``
            (1.0) and ``target_modules`` (names or regular expressions;
            defaults to the attention and text-transformer layers,
            :data:`.lora.DEFAULT_TARGETS`). Everything else is frozen, so
            training trains only the adapters; a base checkpoint loads as
            before (:mod:`.lora`).
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
                     type='DataPreprocessor', mean=[127.5], std=[127.5],
                     data_keys=None),
                 strict_load: bool = True,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 lora_config: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self._unet_cfg = deepcopy(unet) if isinstance(unet, dict) else None
        self.unet = unet if isinstance(unet, nn.Module) else MODELS.build(unet)
        self.diffusion_scheduler = build_scheduler(diffusion_scheduler)
        self.unet_up, self.diffusion_scheduler_up = self._build_upsampler(
            unet_up, diffusion_scheduler_up)
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
        check_train_cfg(self, self.train_cfg)
        check_test_cfg(self, self.test_cfg)
        self._freeze_other_stages(self.train_cfg.get('stage', 'base'))
        if lora_config:
            apply_lora_config(self, lora_config, STAGE_NETWORKS[
                self.train_cfg.get('stage', 'base')])
        if use_fp16 or dtype is not None:
            self.set_precision('float16' if use_fp16 else dtype)
        self.set_memory_format(channels_last)
        self.strict_load = strict_load
        self._register_load_state_dict_pre_hook(self._check_loaded_keys)

    @staticmethod
    def _build_upsampler(unet_up, scheduler_up):
        """The super-resolution UNet and its sampler (the reference's DDIM
        over 'fast27' of the linear schedule by default), or (None, None)."""
        if unet_up is None:
            if scheduler_up is not None:
                raise ValueError('diffusion_scheduler_up is set but unet_up '
                                 'is not: the upsampler needs a network')
            return None, None
        if not isinstance(unet_up, nn.Module):
            unet_up = MODELS.build(unet_up)
        if scheduler_up is None:
            scheduler_up = dict(type='GlideDDIMScheduler',
                                beta_schedule='linear',
                                timestep_respacing='fast27')
        return unet_up, build_scheduler(scheduler_up)

    def _freeze_other_stages(self, stage: str) -> None:
        """Training trains the stage's network only: the others get no
        gradients (and DDP no unused parameters)."""
        if self.unet_up is None and self.classifier is None:
            return
        trained = STAGE_NETWORKS[stage]
        for attr in set(STAGE_NETWORKS.values()):
            if getattr(self, attr) is not None:
                getattr(self, attr).requires_grad_(attr == trained)

    def _check_loaded_keys(self, state_dict, prefix, *args):
        """Strict loading, whatever the loader: mmengine's
        ``load_checkpoint`` only warns about mismatching keys."""
        expected = {prefix + k: tuple(v.shape)
                    for k, v in self.state_dict().items()}
        if not any(map(is_adapter_key, state_dict)):  # a base checkpoint
            expected = {k: v for k, v in expected.items()
                        if not is_adapter_key(k)}
        if not any('.guidance_embedding.' in k for k in state_dict):
            # a teacher's checkpoint: the student's guidance embedding keeps
            # its zero initialisation (the student starts as the teacher)
            expected = {k: v for k, v in expected.items()
                        if '.guidance_embedding.' not in k}
        if self.train_cfg.get('init_from_base', False):
            widen_first_convs(state_dict, prefix, expected)
        match_cascade(self, state_dict, prefix, expected, STAGE_NETWORKS,
                      self.train_cfg.get('stage', 'base'))
        if not self.strict_load:
            return
        given = {k: v for k, v in state_dict.items() if k.startswith(prefix)}
        check_state_dict(given, expected, what='GLIDE state dict')

    def init_weights(self) -> None:
        """mmengine's initialisation, writing to the base weights of
        adapted layers (their ``weight`` reads base + adapters)."""
        with lora_disabled(self):
            super().init_weights()

    def load_lora(self, path: str, scale: float = 1.0,
                  name: Optional[str] = None) -> str:
        """Add a low-rank adapter file's adapters (``tools/train_lora.py``)
        times ``scale``; several may be loaded at once. A file that does not
        fit raises an error naming it and the layer (:func:`.lora.load_lora`).

        Returns:
            str: The adapter's name (the file's, by default).
        """
        return load_lora(self, path, scale, name)

    def unload_lora(self, name: Optional[str] = None) -> 'Glide':
        """Remove the adapters named ``name`` (None: all); the base weights
        were never changed."""
        remove_lora(self, name)
        return self

    def save_lora(self, path: str, name: str = 'default') -> int:
        """Write the adapters ``name`` as a float16 ``.safetensors``
        adapter file; returns its size in bytes."""
        return save_lora(self, path, name)

    def set_precision(self, dtype: Union[str, torch.dtype]) -> 'Glide':
        """Cast the UNets (not the CLIP guide) to ``dtype`` (``'float32'``,
        ``'bfloat16'``, ``'float16'``), keeping GroupNorm/LayerNorm weights
        in float32.

        Returns:
            Glide: self.
        """
        dtype = parse_dtype(dtype)
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
        chosen = channels_last_names(channels_last, ('unet', 'unet_up'))
        for name in ('unet', 'unet_up'):
            net = getattr(self, name)
            if net is not None:
                net.to(memory_format=torch.channels_last if name in chosen
                       else torch.contiguous_format)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def is_inpainting(self) -> bool:
        return self.unet.takes_inpaint

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

    def check_inputs(self, **kwargs) -> SamplingInputs:
        """Check :meth:`infer`'s arguments (the same keywords, see there)
        without sampling or drawing anything; an error names the first bad
        argument and what it accepts (:func:`.sampling_inputs.check_inputs`).
        """
        return check_inputs(self, **kwargs)

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
              callback: Optional[Callable[[int, int], None]] = None,
              strength: Optional[float] = None
              ) -> Dict[str, torch.Tensor]:
        """Generate images from prompts (the MMagic Quick Start call).

        Numbers may be Python numbers, numpy scalars or 0-d tensors. Every
        argument is checked before anything is sampled; a bad one raises an
        error naming it and the accepted range.

        Args:
            init_image (Tensor, optional): With ``mask``: the image to
                inpaint, (B or 1, 3, H, W) in [-1, 1] at the base or the
                upsampler's resolution. With ``strength``: the image to
                edit (same form). With neither: the starting noise (as in
                MMagic; ``latents`` is the clearer name).
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
            strength (float, optional): Image-to-image editing (SDEdit) of
                ``init_image``, in (0, 1]: the image is noised to timestep
                ``strength x T`` (with ``latents`` as the noise, if given)
                and sampled back under the prompt over the base sampler's
                remaining steps (:mod:`.editing`). Small values keep the
                image, large ones follow the prompt; 1 is sampling from
                noise.

        Returns:
            dict: ``samples`` (B, 3, H, W) float32 in [-1, 1]; with
            ``return_low_res``, ``low_res`` too.
        """
        # 1. Check and normalise every argument before sampling anything.
        a = check_inputs(
            self, init_image=init_image, prompt=prompt, batch_size=batch_size,
            guidance_scale=guidance_scale,
            num_inference_steps=num_inference_steps, labels=labels,
            classifier_scale=classifier_scale,
            num_inference_steps_up=num_inference_steps_up, mask=mask,
            latents=latents, latents_up=latents_up, seed=seed,
            generator=generator, upsample_temp=upsample_temp,
            negative_prompt=negative_prompt, height=height, width=width,
            strength=strength)
        if callback is not None and not callable(callback):
            raise TypeError('callback must be a function called as '
                            f'callback(done, total), got {callback!r}')
        # 2. The base stage's starting noise (the upsampler's is drawn after
        #    the base stage, from the same source).
        x = start_noise(a.latents, a.shape, a.generator, self.device)
        # 3. Each stage's timesteps; the progress bar counts them all.
        total = self._set_timesteps(a)
        if a.edit is not None:  # SDEdit: the image noised to strength x T
            x = noise_image(self.diffusion_scheduler, a.edit, x)
        show = show_progress and is_main_process()
        bar = tqdm(total=total, desc='GLIDE base', disable=not show)
        on_step = _step_counter(bar, total, callback)
        try:
            with bar if show else nullcontext():
                # 4. The base model, then the upsampler.
                x, low_res = self._sample_cascade(a, x, on_step, bar)
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

    def _sample_cascade(self, a: SamplingInputs, x: torch.Tensor,
                        on_step: Callable, bar) -> tuple:
        """The base model from ``x``, classifier-free guided (and CLIP guided
        with a classifier_scale); then the upsampler, unguided, from the
        8-bit base sample and its own noise. Returns (samples, base
        samples)."""
        low_res = x = self._sample_stage('base', a, x, on_step)
        if self.unet_up is not None:
            bar.set_description('GLIDE upsample')
            noise = start_noise(a.latents_up, a.shape_up, a.generator,
                                self.device)
            x = self._sample_stage('upsample', a, noise * a.upsample_temp,
                                   on_step, quantize_8bit(low_res))
        return x, low_res

    def _set_timesteps(self, a: SamplingInputs) -> int:
        """Set each stage's sampling timesteps; returns the steps of all."""
        self.diffusion_scheduler.set_timesteps(a.steps)
        if a.edit is not None:
            cut_timesteps(self.diffusion_scheduler, a.edit.strength)
        total = len(self.diffusion_scheduler.timesteps)
        if self.unet_up is not None:
            self.diffusion_scheduler_up.set_timesteps(a.steps_up)
            total += len(self.diffusion_scheduler_up.timesteps)
        return total

    def _sample_stage(self, stage: str, a: SamplingInputs, x: torch.Tensor,
                      on_step: Callable,
                      low_res: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Sample one stage of the cascade (timesteps already set).

        Args:
            stage (str): ``'base'`` or ``'upsample'``.
            a (SamplingInputs): From :func:`check_inputs`.
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
        distilled = getattr(unet, 'guidance_embedding', None) is not None
        guided = base and a.guidance_scale != 1.0 and not distilled
        text = self.encode_prompts(unet, a.prompts,
                                   a.uncond if guided else None)
        cond, paste = {}, None
        if unet.takes_inpaint:
            cond, paste = inpaint_inputs(a.inpaint, unet.image_size)
        if unet.takes_low_res:
            cond['low_res'] = low_res
        guidance_fn = None
        if base and a.classifier_scale > 0:
            guidance_fn = self.classifier.guidance_fn(a.prompts,
                                                      a.classifier_scale)
        try:
            return denoise(
                unet, scheduler, x, text,
                guidance_scale=a.guidance_scale if guided else None,
                guidance_input=a.guidance_scale if distilled else None,
                cond=cond, denoised_fn=paste, generator=a.generator,
                guidance_fn=guidance_fn, callback=on_step)
        except FloatingPointError as err:
            raise FloatingPointError(f'{stage} {err}') from None

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
            # Entered here, which both a plain and a DDP-wrapped model run.
            with step_random_state(self.train_cfg.get('seed', 0),
                                   self.device):
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
    def loss(self, inputs: torch.Tensor, data_samples: list) -> dict:
        """GLIDE's objective on a batch (:func:`.diffusion.training_losses`:
        the prediction's MSE plus the variational bound term of the
        learned-range variance), or the CLIP guide's contrastive loss.

        ``train_cfg``: ``stage`` (``'base'``, ``'upsample'`` or ``'clip'``),
        ``p_uncond`` (caption dropout for classifier-free guidance, 0.2),
        ``vb_weight`` (0.001), ``seed``, ``min_snr_gamma`` (None: the
        paper's objective), ``min_snr_floor`` (0, v only) and
        ``low_freq_noise`` (0: the paper's white noise;
        :func:`.training.low_frequency_noise`). Inpainting networks get
        random rectangle masks; the upsampler gets the area-downsampled,
        8-bit quantised image as its low-res input. docs/training.md says
        why each option exists and what it measured.

        Returns:
            dict: ``loss_mse`` and ``loss_vb``, or ``loss_clip``.
        """
        cfg = self.train_cfg
        check_train_cfg(self, cfg)  # train_cfg may have changed since init
        stage = cfg.get('stage', 'base')
        prompts = self._prompts_of(data_samples)
        x_start = inputs.float()
        if stage == 'clip':
            return self.clip_loss(x_start, prompts)
        if stage in DISTILL_STAGES:
            return distill_loss(self, x_start, prompts)
        unet = self.unet if stage == 'base' else self.unet_up
        scheduler = (self.diffusion_scheduler
                     if stage == 'base' else self.diffusion_scheduler_up)
        if x_start.shape[-1] != unet.image_size:
            raise ValueError(f'training images are {x_start.shape[-1]}px; the '
                             f'{stage} network takes {unet.image_size}px')
        batch, device = x_start.shape[0], x_start.device
        drop = torch.rand(batch) < float(cfg.get('p_uncond', 0.2))
        prompts = ['' if d else p for d, p in zip(drop.tolist(), prompts)]
        cond = self._training_inputs(unet, x_start, stage)
        process = scheduler.train_process
        t = torch.randint(0, process.num_timesteps, (batch, ), device=device)
        noise = low_frequency_noise(x_start.shape, device,
                                    float(cfg.get('low_freq_noise', 0.0)))
        tokens, mask = self.tokenizer(prompts, device=device)
        return training_losses(
            process,
            lambda x_t, t: unet(x_t, t, tokens=tokens, mask=mask, **cond),
            x_start, t, noise, scheduler.prediction_type,
            cfg.get('min_snr_gamma'), cfg.get('min_snr_floor') or 0.0,
            float(cfg.get('vb_weight', 0.001)))

    def _training_inputs(self, unet, x_start: torch.Tensor,
                         stage: str) -> dict:
        """A stage's extra network inputs: the upsampler's 8-bit low-res
        image, an inpainting network's image and random masks."""
        cond = {}
        if stage == 'upsample':
            low = nn.functional.interpolate(
                x_start, (self.unet.image_size, ) * 2, mode='area')
            cond['low_res'] = quantize_8bit(low)
        if unet.takes_inpaint:
            mask = random_rectangle_masks(len(x_start), unet.image_size,
                                          x_start.device)
            cond.update(inpaint_image=x_start, inpaint_mask=mask)
        return cond

    @property
    def teacher(self) -> nn.Module:
        """The frozen teacher of a distillation stage, loaded from
        ``train_cfg.teacher`` at first use; not a submodule (not in the
        state dict, not trained, not wrapped by DDP)."""
        if self.__dict__.get('_teacher') is None:
            if self._unet_cfg is None:
                raise ValueError('distillation builds its teacher from the '
                                 'config of model.unet: pass unet as a dict')
            self.__dict__['_teacher'] = load_teacher(
                self._unet_cfg, self.train_cfg['teacher'], self.device)
        return self.__dict__['_teacher']

    def clip_loss(self, inputs: torch.Tensor, prompts: list) -> dict:
        """``train_cfg.stage='clip'``: the noised CLIP guide's contrastive
        loss between the captions and the images noised by the base process
        at uniform timesteps, as GLIDE trained its noised CLIP.

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
        return dict(loss_clip=clip.contrastive_loss(x_t, t, prompts))

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


def _step_counter(bar, total: int, callback: Optional[Callable]) -> Callable:
    """The per-step hook of :meth:`Glide.infer`: advances the progress bar
    and reports ``callback(done, total)`` over all stages."""
    done = 0

    def on_step(*_):
        nonlocal done
        done += 1
        bar.update(1)
        if callback is not None:
            callback(done, total)

    return on_step
