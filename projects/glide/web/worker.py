"""The web page's logic, independent of the page's layout (unit-testable):
checking the fields, sampling (text to image, inpainting, editing), saving,
stopping, and streaming the progress to the page."""
import os
import queue
import secrets
import threading
import time
import traceback

import gradio as gr

from ..api import (SAMPLERS, build_model, prompt_vocabulary,
                   sampling_settings, save_png, unknown_words)
from ..checks import check_float, check_int
from .common import (Cancelled, StageProgress, check_text, checked,
                     page_error)
from ..images import UploadError, read_rgba, square_rgb

MAX_BATCH = 8
MAX_GUIDANCE = 20.0
MAX_SEED = 2**32 - 1  # the page's numbers are JavaScript doubles
#: The Edit tab's strength range (the slider's).
MIN_STRENGTH, MAX_STRENGTH = 0.05, 1.0
SHAPES_EXAMPLES = [
    'a large red circle in the top left corner, black background',
    'a small blue triangle in the bottom right corner, white background',
    'a large yellow triangle in the top right corner, gray background',
    'a large green square in the bottom left corner, black background',
]


def uploaded(source, name='image'):
    """:func:`.uploads.read_rgba` with its error as the page's."""
    try:
        return read_rgba(source, name)
    except UploadError as err:
        raise page_error(str(err)) from None


class WebDemo:
    """The page's logic, independent of the page (unit-testable).

    Args:
        config (str): Model config file.
        checkpoint (str, optional): Weights; without them the weights are
            random and the page says so.
        device (str): Torch device.
        out_dir (str): Where every generated PNG is kept.
        dtype (str, optional): UNet precision (``float32``, ``bfloat16``,
            ``float16``).
    """

    def __init__(self, config, checkpoint=None, device='cpu',
                 out_dir='outputs/web', dtype=None):
        from mmengine import Config
        self.config, self.checkpoint = config, checkpoint
        cfg = Config.fromfile(config)
        self.model = build_model(cfg, checkpoint, device, dtype=dtype)
        #: The words the model knows (None: any prompt).
        self.vocabulary = prompt_vocabulary(cfg)
        self.out_dir = os.path.abspath(out_dir)
        os.makedirs(self.out_dir, exist_ok=True)
        shown = os.path.relpath(self.out_dir)
        #: ``out_dir`` as the page shows it (relative when inside the cwd).
        self.shown_dir = self.out_dir if shown.startswith('..') else shown
        self.inpainting = self.model.is_inpainting
        up = self.model.unet_up
        self.out_size = (up if up is not None else self.model.unet).image_size
        #: The adapters loaded: dicts of name, file and scale.
        self.loras = []
        self._read_defaults(cfg)
        self._lock = threading.Lock()
        self._running, self._cancel = set(), set()
        self._count = 0  # requests saved, for unique file names

    def _read_defaults(self, cfg):
        """The fields' defaults and ranges, from the config (``test_cfg``
        as validation samples) and the model."""
        test_cfg = cfg.model.get('test_cfg') or {}
        self.default_guidance = float(test_cfg.get('guidance_scale', 3.0))
        #: The upsampler's steps (None: its scheduler's default respacing).
        self.steps_up = test_cfg.get('num_inference_steps_up')
        scheduler = self.model.diffusion_scheduler
        names = {v: k for k, v in SAMPLERS.items()}
        self.default_sampler = names[type(scheduler).__name__]
        self.max_steps = scheduler.num_train_timesteps
        scheduler.set_timesteps(test_cfg.get('num_inference_steps'))
        self.default_steps = len(scheduler.timesteps)
        self._scheduler_cfg = dict(cfg.model.diffusion_scheduler)
        self._schedulers = {self.default_sampler: scheduler}

    def load_loras(self, specs):
        """Load LoRA adapter files (``Glide.load_lora``; several add up).

        Args:
            specs (list[tuple[str, float]]): Each file and its scale.

        Raises:
            FileNotFoundError, ValueError: ``load_lora``'s, naming the file.
        """
        for path, scale in specs:
            name = self.model.load_lora(path, scale=scale)
            self.loras.append(dict(name=name, file=path, scale=scale))

    # ---------------------------------------------------------- checking
    def check(self, prompt, negative_prompt, batch_size, guidance, sampler,
              steps, seed, random_seed):
        """Check the page's values with the checks ``Glide.infer`` uses; a
        bad one raises :class:`gr.Error` naming the field and its range.

        Returns:
            dict: The normalised values (``seed`` drawn when
            ``random_seed``).
        """
        prompt = check_text(prompt, 'Prompt')
        if not prompt:
            raise page_error('Prompt is empty: describe the image to draw, '
                             f'e.g. "{SHAPES_EXAMPLES[0]}".')
        negative_prompt = check_text(negative_prompt, 'Negative prompt')
        batch_size = checked(check_int, batch_size, 'Batch size', 1,
                             MAX_BATCH)
        guidance = checked(check_float, guidance, 'Guidance scale', 0,
                           MAX_GUIDANCE)
        if sampler not in SAMPLERS:
            raise page_error(f'Sampler must be one of '
                             f'{", ".join(sorted(SAMPLERS))}, got '
                             f'{sampler!r}.')
        steps = checked(check_int, steps, 'Steps', 1, self.max_steps)
        if random_seed:
            seed = secrets.randbelow(MAX_SEED + 1)
        seed = checked(check_int, seed, 'Seed', 0, MAX_SEED)
        return dict(prompt=prompt, negative_prompt=negative_prompt or None,
                    batch_size=batch_size, guidance=guidance,
                    sampler=sampler, steps=steps, seed=seed)

    def vocabulary_note(self, prompt):
        """The words of ``prompt`` the model does not know, as a line for the
        page ('' when it knows them all or knows any word)."""
        words = unknown_words(prompt or '', self.vocabulary)
        if not words:
            return ''
        return (f'The model does not know {", ".join(map(repr, words))}: '
                'it learned only the words of its training captions ('
                f'{", ".join(sorted(self.vocabulary))}).')

    def inpaint_inputs(self, editor):
        """The image and mask painted in the page's editor, as ``infer``
        takes them.

        Args:
            editor (dict | None): Gradio's ImageEditor value: ``background``
                (H, W, 3 or 4) uint8 (all transparent when nothing was
                uploaded; a file or Pillow image is read as an upload),
                ``layers`` (RGBA brush strokes; one of another size than
                the image is resized to it, nearest pixel).

        Returns:
            tuple[Tensor, Tensor]: ``init_image`` (1, 3, S, S) in [-1, 1]
            and ``mask`` (1, 1, S, S), 1 = keep, 0 = painted (generate).
        """
        import numpy as np
        import torch
        from PIL import Image
        image = self._editor_image(editor)
        painted = np.zeros(image.shape[:2], dtype=bool)
        for layer in (editor.get('layers') or []):
            if layer is None:
                continue
            alpha = uploaded(layer, 'painted layer')[..., 3] > 0
            if alpha.shape != painted.shape:
                alpha = np.asarray(Image.fromarray(alpha).resize(
                    painted.shape[::-1], Image.NEAREST))
            painted |= alpha
        if not painted.any():
            raise page_error('Nothing is painted: pick the brush (the pen '
                             'button under the canvas) and paint over the '
                             'region of the image to fill.')
        init = torch.from_numpy(self._square(image))
        size = (self.out_size, self.out_size)
        keep = Image.fromarray(~painted).resize(size, Image.NEAREST)
        mask = torch.from_numpy(np.asarray(keep, dtype=np.float32))
        return init.permute(2, 0, 1)[None], mask[None, None]

    def _editor_image(self, editor):
        """The editor's uploaded image (H, W, 4), refused when there is none
        (the empty canvas is all transparent)."""
        image = (editor or {}).get('background')
        if image is not None:
            image = uploaded(image)
        if image is None or not image[..., 3].any():
            raise page_error('No image to inpaint: upload an image first '
                             '(the upload button under the canvas), then '
                             'pick the brush and paint over the region to '
                             'fill.')
        return image

    def _square(self, rgba):
        """:func:`.uploads.square_rgb` at the output size, its error as the
        page's."""
        try:
            return square_rgb(rgba, self.out_size)
        except UploadError as err:
            raise page_error(str(err)) from None

    def edit_input(self, image):
        """The Edit tab's upload as ``infer``'s ``init_image``: (1, 3, S, S)
        in [-1, 1], S the output size (RGB on white, bicubic)."""
        import torch
        if image is None:
            raise page_error('No image to edit: upload an image (a square '
                             'one; it is resized to '
                             f'{self.out_size}x{self.out_size}).')
        array = self._square(uploaded(image))
        return torch.from_numpy(array).permute(2, 0, 1)[None]

    # ---------------------------------------------------------- sampling
    def scheduler(self, name):
        """The named sampler (built once, from the config's settings)."""
        if name not in self._schedulers:
            from ..models.base_scheduler import build_scheduler
            self._schedulers[name] = build_scheduler(
                dict(self._scheduler_cfg, type=SAMPLERS[name]))
        return self._schedulers[name]

    def stages(self, steps, strength=None):
        """Each stage's name and steps for ``steps`` base steps (sets the
        schedulers' timesteps, as ``infer`` will; an edit of ``strength``
        runs the base steps at or below ``strength x T``)."""
        from ..models.editing import cut_timesteps
        base = self.model.diffusion_scheduler
        base.set_timesteps(steps)
        if strength is not None:
            cut_timesteps(base, strength)
        size = self.model.unet.image_size
        stages = [(f'Base model {size}x{size}', len(base.timesteps))]
        if self.model.unet_up is not None:
            up = self.model.diffusion_scheduler_up
            up.set_timesteps(self.steps_up)
            stages.append((f'Upsampler {self.out_size}x{self.out_size}',
                           len(up.timesteps)))
        return stages

    def generate(self, prompt, negative_prompt, batch_size, guidance,
                 sampler, steps, seed, random_seed, request=None,
                 progress=None):
        """Text to image.

        Args:
            progress (callable, optional): Called with a line after every
                sampling step (see :class:`StageProgress`).

        Returns:
            tuple: the PNG paths (gallery and download), the seed used and a
            status line; after a stop, ``gr.update()`` (no change) for the
            first two.
        """
        fields = (prompt, negative_prompt, batch_size, guidance, sampler,
                  steps, seed, random_seed)
        if self.inpainting:  # asks for the image to inpaint
            return self.inpaint(None, *fields, request=request,
                                progress=progress)
        return self._run(self.check(*fields), {}, request, progress)

    def inpaint(self, editor, prompt, negative_prompt, batch_size, guidance,
                sampler, steps, seed, random_seed, request=None,
                progress=None):
        """Inpainting; returns as :meth:`generate`."""
        if not self.inpainting:
            raise page_error(f'{os.path.basename(self.config)} is not an '
                             'inpainting model: start the page with an '
                             'inpainting config.')
        v = self.check(prompt, negative_prompt, batch_size, guidance,
                       sampler, steps, seed, random_seed)
        init_image, mask = self.inpaint_inputs(editor)
        return self._run(v, dict(init_image=init_image, mask=mask), request,
                         progress)

    def edit(self, image, strength, prompt, negative_prompt, batch_size,
             guidance, sampler, steps, seed, random_seed, request=None,
             progress=None):
        """Image to image (SDEdit) of ``image`` (a file, Pillow image or
        array; read as an upload) at ``strength`` in [0.05, 1]: small keeps
        the image, 1 draws anew. Returns as :meth:`generate`."""
        if self.inpainting:
            raise page_error(f'{os.path.basename(self.config)} is an '
                             'inpainting model: editing needs a text to '
                             'image model.')
        strength = checked(check_float, strength, 'Strength', MIN_STRENGTH,
                           MAX_STRENGTH)
        v = self.check(prompt, negative_prompt, batch_size, guidance,
                       sampler, steps, seed, random_seed)
        init_image = self.edit_input(image)
        return self._run(v, dict(init_image=init_image, strength=strength),
                         request, progress)

    def cancel(self, request: gr.Request = None):
        """Stop this page's running request at its next step."""
        session = getattr(request, 'session_hash', None)
        if session in self._running:
            self._cancel.add(session)
            return 'Stopped: no images were made.'
        return 'Nothing is running.'

    def _run(self, v, inputs, request, progress):
        """Sample with the checked values ``v`` and the image inputs of
        ``infer`` (``init_image`` with ``mask`` or ``strength``), one
        request at a time; save the PNGs."""
        session = getattr(request, 'session_hash', None)
        with self._lock:
            self._running.add(session)
            self._cancel.discard(session)
            try:
                samples, settings = self._sample(v, inputs, session,
                                                 progress)
            except Cancelled as stop:
                return gr.update(), gr.update(), v['seed'], str(stop)
            finally:
                self._running.discard(session)
                self._cancel.discard(session)
        paths = self._save(samples, settings)
        status = (f'{len(paths)} image{"s" * (len(paths) > 1)} in '
                  f'{settings["seconds"]:.1f} s, seed {v["seed"]}; saved in '
                  f'{self.shown_dir}')
        note = self.vocabulary_note(v['prompt'])
        return paths, paths, v['seed'], f'{status}. {note}' if note else status

    def _on_step(self, lines, session, progress):
        """The sampling callback: the progress line, and the stop."""

        def on_step(done, _total):
            if progress is not None:
                progress(lines(done))
            if session in self._cancel:
                index, step = lines.locate(done)
                name, steps = lines.stages[index]
                raise Cancelled(f'Stopped at step {step} of {steps} ({name}): '
                                'no images were made.')

        return on_step

    def _sample(self, v, inputs, session, progress):
        """Sample with the checked values ``v`` (the lock held).

        Returns:
            tuple[Tensor, dict]: The samples and the settings they were made
            with (for the PNGs).
        """
        self.model.diffusion_scheduler = self.scheduler(v['sampler'])
        lines = StageProgress(self.stages(v['steps'], inputs.get('strength')))
        start = time.time()
        try:
            samples = self.model.infer(
                prompt=v['prompt'], batch_size=v['batch_size'],
                negative_prompt=v['negative_prompt'],
                guidance_scale=v['guidance'], num_inference_steps=v['steps'],
                num_inference_steps_up=self.steps_up, seed=v['seed'],
                callback=self._on_step(lines, session, progress),
                **inputs)['samples']
        except (ValueError, TypeError, FloatingPointError,
                MemoryError) as err:
            raise page_error(str(err)) from None
        except Cancelled:
            raise
        except Exception as err:  # a bug: the trace for the log
            traceback.print_exc()
            raise gr.Error(f'Sampling failed ({type(err).__name__}); the '
                           'server log has the details.',
                           print_exception=False) from None
        return samples, self._settings(v, inputs, time.time() - start)

    def _settings(self, v, inputs, seconds):
        """The settings a request's images were made with (PNG metadata)."""
        settings = dict(prompt=v['prompt'], batch_size=v['batch_size'],
                        seed=v['seed'])
        settings.update(sampling_settings(
            self.model, v['guidance'], v['negative_prompt'], v['steps'],
            self.steps_up))
        settings['inpainted'] = inputs.get('mask') is not None
        if inputs.get('strength') is not None:
            settings.update(edited=True, strength=inputs['strength'])
        if self.loras:
            settings['lora'] = [dict(file=os.path.basename(a['file']),
                                     scale=a['scale']) for a in self.loras]
        settings.update(config=self.config,
                        checkpoint=self.checkpoint or 'none (random weights)',
                        seconds=round(seconds, 2))
        return settings

    def _save(self, samples, settings):
        """Each sample as a PNG with its settings; returns the paths."""
        import torch
        from PIL import Image
        images = ((samples + 1) * 127.5).round().clamp(0, 255).to(
            torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        seed = settings['seed']
        with self._lock:  # a name no other request (or earlier run) has
            while True:
                self._count += 1
                stamp = f'{time.strftime("%Y%m%d-%H%M%S")}-{self._count:03d}'
                if not any(os.path.exists(os.path.join(
                        self.out_dir, f'{stamp}-seed{seed}-{i}.png'))
                        for i in range(len(images))):
                    break
        paths = []
        for i, array in enumerate(images):
            path = os.path.join(self.out_dir, f'{stamp}-seed{seed}-{i}.png')
            save_png(Image.fromarray(array), path, dict(settings, index=i))
            paths.append(path)
        return paths

    # ---------------------------------------------------------- the page
    def page_generate(self, prompt, negative_prompt, batch_size, guidance,
                      sampler, steps, seed, random_seed,
                      request: gr.Request = None):
        """:meth:`generate` for the page: yields the status line at every
        step, then the results."""
        yield from stream(self.generate, (
            prompt, negative_prompt, batch_size, guidance, sampler, steps,
            seed, random_seed), request)

    def page_inpaint(self, editor, prompt, negative_prompt, batch_size,
                     guidance, sampler, steps, seed, random_seed,
                     request: gr.Request = None):
        """:meth:`inpaint` for the page, as :meth:`page_generate`."""
        yield from stream(self.inpaint, (
            editor, prompt, negative_prompt, batch_size, guidance, sampler,
            steps, seed, random_seed), request)

    def page_edit(self, image, strength, prompt, negative_prompt, batch_size,
                  guidance, sampler, steps, seed, random_seed,
                  request: gr.Request = None):
        """:meth:`edit` for the page, as :meth:`page_generate`."""
        yield from stream(self.edit, (
            image, strength, prompt, negative_prompt, batch_size, guidance,
            sampler, steps, seed, random_seed), request)


def stream(run, args, request):
    """``run(*args)`` (a :class:`WebDemo` request) in a worker thread;
    yields (gallery, files, seed, status) with the status line at every
    step (the other outputs unchanged), then the results. An error is shown
    in the status line and raised (the page's message); the last images
    stay."""
    updates = queue.Queue()

    def work():
        try:
            result = run(*args, request=request,
                         progress=lambda line: updates.put(('step', line)))
            updates.put(('done', result))
        except BaseException as err:  # raised in the page's thread
            updates.put(('error', err))

    threading.Thread(target=work, daemon=True).start()
    keep = gr.update()
    while True:
        kind, value = updates.get()
        if kind == 'step':
            yield keep, keep, keep, value
        elif kind == 'done':
            yield value
            return
        else:
            message = getattr(value, 'message', str(value))
            yield keep, keep, keep, f'No images: {message}'
            raise value
