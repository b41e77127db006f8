"""A web page for GLIDE: prompt to images, and inpainting, in the browser.

Examples::

    make web                      # the shapes demo model on 127.0.0.1:7860
    python tools/web_demo.py      # the same
    python tools/web_demo.py CONFIG [CHECKPOINT] [--port 7861]
    python tools/web_demo.py \
        projects/glide/configs/glide_inpaint-classifier-free_laion-64x64.py \
        glide-64-inpaint.pth      # adds the inpainting tab

The page serves this machine only (127.0.0.1) unless ``--host`` says
otherwise; there is no public share link. Requests from several tabs queue
and run one at a time, each getting its own images. Every image is written to
``--out-dir`` (default ``outputs/web``) as a PNG whose text metadata (key
``glide``) holds the settings that made it, as ``tools/glide_sample.py``
writes them; the page's download buttons give those files.

Every field is checked by the server with the checks that ``Glide.infer``
uses (``projects/glide/checks.py``); a bad value gets a message naming the
field and its range, one line in the server log, and leaves the last images
in place.
"""
import argparse
import os
import queue
import secrets
import sys
import threading
import time
import traceback

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
sys.path.insert(0, ROOT)

from projects.glide.runtime import require_environment  # noqa: E402

require_environment('tools/web_demo.py', ('torch', 'mmengine', 'mmagic',
                                          'gradio'))

import gradio as gr  # noqa: E402

from projects.glide.api import (DEMO_CHECKPOINT, DEMO_CONFIG,  # noqa: E402
                                DTYPES, SAMPLERS, build_model,
                                prompt_vocabulary, sampling_settings,
                                save_png, unknown_words)
from projects.glide.checks import check_float, check_int  # noqa: E402

MAX_BATCH = 8
MAX_GUIDANCE = 20.0
MAX_SEED = 2**32 - 1  # the page's numbers are JavaScript doubles
#: The inpainting brush: magenta, seen on black, white and gray scenes.
BRUSH = '#ff00ff'
SHAPES_EXAMPLES = [
    'a large red circle in the top left corner, black background',
    'a small blue triangle in the bottom right corner, white background',
    'a large yellow triangle in the top right corner, gray background',
    'a large green square in the bottom left corner, black background',
]
INPAINT_HELP = (
    '1. Upload a square image (the upload button under the canvas).\n'
    '2. Pick the brush (the pen button under the canvas) and paint, in '
    'magenta, over the region to fill.\n'
    '3. Describe the whole image in the prompt and press Inpaint.')
# Crisp pixels for small images shown large.
CSS = '.pixelated img { image-rendering: pixelated; }'


class Cancelled(Exception):
    """Raised from the sampling callback when the page asked to stop."""


def page_error(message):
    """The page's error for a refused request: the message in the page and
    one line in the server log, no traceback.

    Args:
        message (str): What is wrong and what is accepted.

    Returns:
        gr.Error: To raise.
    """
    print(f'web_demo: refused: {message}', file=sys.stderr, flush=True)
    return gr.Error(message, print_exception=False)


def checked(check, value, *args):
    """``check(value, *args)`` (a checker of ``projects/glide/checks.py``)
    with its error as the page's error.

    The page's number fields give floats: a whole one is passed as an int.
    """
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    try:
        return check(value, *args)
    except (ValueError, TypeError) as err:
        raise page_error(f'{err}.') from None


class StageProgress:
    """One line per sampling step of a cascade: the stage, its step and
    the seconds left in it, from the stage's own pace (an upsampler step
    costs more than a base step, so one pace for all would mislead).

    Args:
        stages (list[tuple[str, int]]): Each stage's name and steps, in
            sampling order.
        clock (callable): Seconds now (tests pass their own).
    """

    def __init__(self, stages, clock=time.monotonic):
        self.stages, self.clock = stages, clock
        self.stage_start = self.last = clock()

    def locate(self, done):
        """The stage (its index in ``stages``) and its step after ``done``
        steps of all stages together."""
        index, step = 0, done
        while index + 1 < len(self.stages) and step > self.stages[index][1]:
            step -= self.stages[index][1]
            index += 1
        return index, step

    def __call__(self, done):
        """The line after ``done`` steps of all stages together."""
        now = self.clock()
        index, step = self.locate(done)
        name, steps = self.stages[index]
        if step == 1:
            self.stage_start = self.last
        self.last = now
        left = (now - self.stage_start) / step * (steps - step)
        line = f'{name}: step {step} of {steps}, about {left:.1f} s left'
        later = ', '.join(f'{n} ({s} steps)' for n, s in
                          self.stages[index + 1:])
        return f'{line}; then {later}' if later else line


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

    # ---------------------------------------------------------- checking
    def check(self, prompt, negative_prompt, batch_size, guidance, sampler,
              steps, seed, random_seed):
        """Check the page's values with the checks ``Glide.infer`` uses; a
        bad one raises :class:`gr.Error` naming the field and its range.

        Returns:
            dict: The normalised values (``seed`` drawn when
            ``random_seed``).
        """
        prompt = (prompt or '').strip()
        if not prompt:
            raise page_error('Prompt is empty: describe the image to draw, '
                             f'e.g. "{SHAPES_EXAMPLES[0]}".')
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
        return dict(prompt=prompt,
                    negative_prompt=(negative_prompt or '').strip() or None,
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
                uploaded), ``layers`` (RGBA brush strokes).

        Returns:
            tuple[Tensor, Tensor]: ``init_image`` (1, 3, S, S) in [-1, 1]
            and ``mask`` (1, 1, S, S), 1 = keep, 0 = painted (generate).
        """
        import numpy as np
        import torch
        from PIL import Image
        image = self._uploaded_image(editor)
        painted = np.zeros(image.shape[:2], dtype=bool)
        for layer in (editor.get('layers') or []):
            layer = np.asarray(layer) if layer is not None else None
            if layer is not None and layer.shape[:2] == painted.shape \
                    and layer.ndim == 3 and layer.shape[2] == 4:
                painted |= layer[..., 3] > 0
        if not painted.any():
            raise page_error('Nothing is painted: pick the brush (the pen '
                             'button under the canvas) and paint over the '
                             'region of the image to fill.')
        size = (self.out_size, self.out_size)
        rgb = Image.fromarray(image[..., :3].astype(np.uint8)).resize(
            size, Image.BICUBIC)
        keep = Image.fromarray(~painted).resize(size, Image.NEAREST)
        init = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 127.5 - 1)
        mask = torch.from_numpy(np.asarray(keep, dtype=np.float32))
        return init.permute(2, 0, 1)[None], mask[None, None]

    def _uploaded_image(self, editor):
        """The editor's uploaded image (H, W, C), refused when there is
        none (the empty canvas is all transparent) or it is not square."""
        import numpy as np
        image = (editor or {}).get('background')
        if image is not None:
            image = np.asarray(image)
        if image is None or image.ndim != 3 or (
                image.shape[2] == 4 and not image[..., 3].any()):
            raise page_error('No image to inpaint: upload an image first '
                             '(the upload button under the canvas), then '
                             'pick the brush and paint over the region to '
                             'fill.')
        height, width = image.shape[:2]
        if height != width:
            raise page_error(f'The image is {width}x{height}: the model '
                             'needs a square image (it is resized to '
                             f'{self.out_size}x{self.out_size}); crop it '
                             'square first.')
        return image

    # ---------------------------------------------------------- sampling
    def scheduler(self, name):
        """The named sampler (built once, from the config's settings)."""
        if name not in self._schedulers:
            from projects.glide.models.base_scheduler import build_scheduler
            self._schedulers[name] = build_scheduler(
                dict(self._scheduler_cfg, type=SAMPLERS[name]))
        return self._schedulers[name]

    def stages(self, steps):
        """Each stage's name and steps for ``steps`` base steps (sets the
        schedulers' timesteps, as ``infer`` will)."""
        base = self.model.diffusion_scheduler
        base.set_timesteps(steps)
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
        return self._run(None, prompt, negative_prompt, batch_size, guidance,
                         sampler, steps, seed, random_seed, request=request,
                         progress=progress)

    def inpaint(self, editor, prompt, negative_prompt, batch_size, guidance,
                sampler, steps, seed, random_seed, request=None,
                progress=None):
        """Inpainting; returns as :meth:`generate`."""
        if not self.inpainting:
            raise page_error(f'{os.path.basename(self.config)} is not an '
                             'inpainting model: start the page with an '
                             'inpainting config.')
        return self._run(editor, prompt, negative_prompt, batch_size,
                         guidance, sampler, steps, seed, random_seed,
                         request=request, progress=progress)

    def cancel(self, request: gr.Request = None):
        """Stop this page's running request at its next step."""
        session = getattr(request, 'session_hash', None)
        if session in self._running:
            self._cancel.add(session)
            return 'Stopped: no images were made.'
        return 'Nothing is running.'

    def _run(self, editor, *fields, request=None, progress=None):
        v = self.check(*fields)
        init_image = mask = None
        if editor is not None or self.inpainting:
            init_image, mask = self.inpaint_inputs(editor)
        session = getattr(request, 'session_hash', None)
        with self._lock:
            self._running.add(session)
            self._cancel.discard(session)
            try:
                samples, settings = self._sample(v, init_image, mask,
                                                 session, progress)
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

    def _sample(self, v, init_image, mask, session, progress):
        """Sample with the checked values ``v`` (the lock held).

        Returns:
            tuple[Tensor, dict]: The samples and the settings they were made
            with (for the PNGs).
        """
        self.model.diffusion_scheduler = self.scheduler(v['sampler'])
        lines = StageProgress(self.stages(v['steps']))

        def on_step(done, _total):
            if progress is not None:
                progress(lines(done))
            if session in self._cancel:
                index, step = lines.locate(done)
                name, steps = lines.stages[index]
                raise Cancelled(f'Stopped at step {step} of {steps} ({name}): '
                                'no images were made.')

        start = time.time()
        try:
            samples = self.model.infer(
                prompt=v['prompt'], batch_size=v['batch_size'],
                negative_prompt=v['negative_prompt'],
                guidance_scale=v['guidance'], num_inference_steps=v['steps'],
                num_inference_steps_up=self.steps_up, seed=v['seed'],
                init_image=init_image, mask=mask, callback=on_step)['samples']
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
        settings = dict(prompt=v['prompt'], batch_size=v['batch_size'],
                        seed=v['seed'])
        settings.update(sampling_settings(
            self.model, v['guidance'], v['negative_prompt'], v['steps'],
            self.steps_up))
        settings.update(
            inpainted=mask is not None, config=self.config,
            checkpoint=self.checkpoint or 'none (random weights)',
            seconds=round(time.time() - start, 2))
        return samples, settings

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
        yield from self._stream(self.generate, (
            prompt, negative_prompt, batch_size, guidance, sampler, steps,
            seed, random_seed), request)

    def page_inpaint(self, editor, prompt, negative_prompt, batch_size,
                     guidance, sampler, steps, seed, random_seed,
                     request: gr.Request = None):
        """:meth:`inpaint` for the page, as :meth:`page_generate`."""
        yield from self._stream(self.inpaint, (
            editor, prompt, negative_prompt, batch_size, guidance, sampler,
            steps, seed, random_seed), request)

    def _stream(self, run, args, request):
        """``run(*args)`` (:meth:`generate` or :meth:`inpaint`) in a worker
        thread; yields (gallery, files, seed, status) with the status line
        at every step (the other outputs unchanged), then the results. An
        error is shown in the status line and raised (the page's message);
        the last images stay."""
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


def _header(demo):
    """The page's title and the model's description."""
    name = os.path.basename(demo.config)
    size = demo.model.unet.image_size
    model = f'{size}x{size} px'
    if demo.model.unet_up is not None:
        model += (f', upsampled to {demo.out_size}x{demo.out_size} px ('
                  f'{demo.stages(demo.default_steps)[1][1]} steps)')
    gr.Markdown(f'# GLIDE\n`{name}`: {model}. Images are kept in '
                f'`{demo.shown_dir}` with their settings in the PNG '
                'metadata.')
    if not demo.checkpoint:
        gr.Markdown('**No checkpoint: the weights are random and the '
                    'images are noise.**')


def _input_fields(demo, inpaint):
    """The input column: the fields (in :meth:`WebDemo.generate`'s order,
    the editor first when inpainting) and the buttons.

    Number fields without a minimum or maximum: the server checks each and
    names the field and its range (Gradio's own check would not name it,
    and a slider would silently clamp a value).

    Returns:
        tuple: (fields, run button, stop button, prompt, seed field).
    """
    fields = []
    if inpaint:
        gr.Markdown(INPAINT_HELP, elem_id='inpaint-help')
        fields.append(gr.ImageEditor(
            label='Image: upload it, pick the brush, paint the region to fill',
            type='numpy', sources=['upload'], elem_id='editor',
            brush=gr.Brush(colors=[BRUSH], default_color=BRUSH,
                           color_mode='fixed')))
    prompt = gr.Textbox(label='Prompt', lines=2, elem_id='prompt')
    note = gr.Markdown(elem_id='vocabulary')
    negative = gr.Textbox(label='Negative prompt (guidance scale not 1)',
                          elem_id='negative')
    with gr.Row():
        batch = gr.Number(4, label='Batch size', info=f'1 to {MAX_BATCH}',
                          step=1, elem_id='batch')
        guidance = gr.Number(demo.default_guidance, step=0.5,
                             label='Guidance scale',
                             info=f'0 to {MAX_GUIDANCE:g}; 1 = off',
                             elem_id='guidance')
    with gr.Row():
        sampler = gr.Dropdown(sorted(SAMPLERS), value=demo.default_sampler,
                              label='Sampler')
        steps = gr.Number(demo.default_steps, step=1, label='Steps',
                          info=f'1 to {demo.max_steps} (base model)',
                          elem_id='steps')
    with gr.Row():
        seed = gr.Number(0, step=1, label='Seed', info=f'0 to {MAX_SEED}',
                         elem_id='seed')
        random_seed = gr.Checkbox(False, label='Random seed (shown after)')
    with gr.Row():
        run = gr.Button('Inpaint' if inpaint else 'Generate',
                        variant='primary', elem_id='generate')
        stop = gr.Button('Stop', elem_id='stop')
    if demo.vocabulary is not None:
        gr.Examples(SHAPES_EXAMPLES, [prompt],
                    label='Captions the model knows')
        prompt.change(demo.vocabulary_note, prompt, note, queue=False,
                      show_progress='hidden')
    fields += [prompt, negative, batch, guidance, sampler, steps, seed,
               random_seed]
    return fields, run, stop, prompt, seed


def _tab(demo, inpaint):
    """One tab: the fields, the images, and their events."""
    with gr.Row():
        with gr.Column():
            fields, run, stop, prompt, seed = _input_fields(demo, inpaint)
        with gr.Column():
            # No captions: a caption badge would hide a corner of the image.
            gallery = gr.Gallery(label='Images', columns=4, elem_id='gallery',
                                 elem_classes='pixelated')
            status = gr.Markdown(elem_id='status')
            files = gr.File(label='PNG files (with settings)',
                            file_count='multiple')
    fn = demo.page_inpaint if inpaint else demo.page_generate
    outputs = [gallery, files, seed, status]
    # show_progress='hidden': the status line shows the progress, and an
    # error leaves the outputs as they were (no overlay, no badges).
    events = [trigger(fn, fields, outputs, concurrency_id='sampling',
                      show_progress='hidden')
              for trigger in (run.click, prompt.submit)]
    stop.click(demo.cancel, None, status, cancels=events, queue=False)


def build_page(demo):
    """The Gradio page for a :class:`WebDemo`."""
    with gr.Blocks(title='GLIDE', css=CSS) as page:
        _header(demo)
        title = 'Inpaint' if demo.inpainting else 'Text to image'
        with gr.Tab(title):
            _tab(demo, demo.inpainting)
    page.queue(default_concurrency_limit=1, max_size=32)
    return page


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', nargs='?', default=DEMO_CONFIG,
                   help='model config (default: the shapes demo config)')
    p.add_argument('checkpoint', nargs='?', default=None,
                   help='weights (.pth or .safetensors; default: the shipped '
                   'shapes weights with the default config)')
    p.add_argument('--host', default='127.0.0.1',
                   help='address to serve on (default 127.0.0.1: this '
                   'machine only; 0.0.0.0 for the network)')
    p.add_argument('--port', type=int, default=7860)
    p.add_argument('--out-dir', default='outputs/web',
                   help='where the PNGs are kept (default outputs/web)')
    p.add_argument('--device', default='cpu')
    p.add_argument('--dtype', choices=DTYPES, default=None)
    args = p.parse_args(argv)
    if args.checkpoint is None and os.path.abspath(args.config) == \
            DEMO_CONFIG and os.path.isfile(DEMO_CHECKPOINT):
        args.checkpoint = DEMO_CHECKPOINT
    for what, path in (('config', args.config),
                       ('checkpoint', args.checkpoint)):
        if path and not os.path.isfile(path):
            p.error(f'{what} {path}: no such file')
    if not 0 < args.port < 65536:
        p.error(f'--port must be in [1, 65535], got {args.port}')
    return args


def main(argv=None):
    args = parse_args(argv)
    demo = WebDemo(args.config, args.checkpoint, args.device, args.out_dir,
                   args.dtype)
    page = build_page(demo)
    print(f'GLIDE web demo: http://{args.host}:{args.port}/ (Ctrl+C stops; '
          f'images kept in {demo.shown_dir})', flush=True)
    page.launch(server_name=args.host, server_port=args.port, share=False,
                allowed_paths=[demo.out_dir], show_api=False, quiet=True)


if __name__ == '__main__':
    from projects.glide.runtime import configure_threads
    configure_threads()
    main()
