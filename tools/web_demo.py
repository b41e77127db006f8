"""A web page for GLIDE: prompt to images, and inpainting, in the browser.

Examples::

    make web                      # the shapes demo model on 127.0.0.1:7860
    python tools/web_demo.py      # the same
    python tools/web_demo.py CONFIG [CHECKPOINT] [--port 7861]
    python tools/web_demo.py \
        projects/glide/configs/glide_ddim-classifier-free_laion-64x64-inpaint.py \
        glide-64-inpaint.pth      # adds the inpainting tab

The page serves this machine only (127.0.0.1) unless ``--host`` says
otherwise; there is no public share link. Requests from several tabs queue
and run one at a time, each getting its own images. Every image is written to
``--out-dir`` (default ``outputs/web``) as a PNG whose text metadata (key
``glide``) holds the settings that made it, as ``tools/glide_sample.py``
writes them; the page's download buttons give those files.
"""
import argparse
import os
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

from tools.glide_sample import (DEMO_CHECKPOINT, DEMO_CONFIG,  # noqa: E402
                                DTYPES, SAMPLERS, build_model, save_png)

MAX_BATCH = 8
MAX_STEPS = 250
MAX_GUIDANCE = 20.0
MAX_SEED = 2**32 - 1
SHAPES_EXAMPLES = [
    'a large red circle in the top left corner, black background',
    'a small blue square in the bottom right corner, white background',
    'a large yellow triangle in the top right corner, gray background',
    'a small green square in the bottom left corner, black background',
]
# Crisp pixels for small images shown large.
CSS = '.pixelated img { image-rendering: pixelated; }'


class Cancelled(Exception):
    """Raised from the sampling callback when the page asked to stop."""


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
        from mmengine.registry import init_default_scope

        import projects.glide.models  # noqa: F401  (registers GLIDE)
        init_default_scope('mmagic')
        self.config, self.checkpoint = config, checkpoint
        cfg = Config.fromfile(config)
        self.model = build_model(cfg, checkpoint, device)
        if dtype:
            self.model.set_precision(dtype)
        self.out_dir = os.path.abspath(out_dir)
        os.makedirs(self.out_dir, exist_ok=True)
        shown = os.path.relpath(self.out_dir)
        #: ``out_dir`` as the page shows it (relative when inside the cwd).
        self.shown_dir = self.out_dir if shown.startswith('..') else shown
        self.inpainting = self.model.is_inpainting
        up = self.model.unet_up
        self.out_size = (up if up is not None else self.model.unet).image_size
        test_cfg = cfg.model.get('test_cfg') or {}
        self.default_guidance = float(test_cfg.get('guidance_scale', 3.0))
        scheduler = self.model.diffusion_scheduler
        names = {v: k for k, v in SAMPLERS.items()}
        self.default_sampler = names[type(scheduler).__name__]
        scheduler.set_timesteps(test_cfg.get('num_inference_steps'))
        self.default_steps = min(len(scheduler.timesteps), MAX_STEPS)
        self._scheduler_cfg = dict(cfg.model.diffusion_scheduler)
        self._schedulers = {self.default_sampler: scheduler}
        self._lock = threading.Lock()
        self._running, self._cancel = set(), set()
        self._count = 0  # requests saved, for unique file names

    # ---------------------------------------------------------- checking
    def check(self, prompt, negative_prompt, batch_size, guidance, sampler,
              steps, seed, random_seed):
        """Check the page's values; a bad one raises :class:`gr.Error`
        naming the field and the accepted range.

        Returns:
            dict: The normalised values (``seed`` drawn when
            ``random_seed``).
        """
        prompt = (prompt or '').strip()
        if not prompt:
            raise gr.Error('Prompt is empty: describe the image to draw, '
                           f'e.g. "{SHAPES_EXAMPLES[0]}".')
        batch_size = self._int(batch_size, 'Batch size', 1, MAX_BATCH)
        guidance = self._number(guidance, 'Guidance scale', 0, MAX_GUIDANCE)
        if sampler not in SAMPLERS:
            raise gr.Error(f'Sampler {sampler!r} is not one of '
                           f'{", ".join(sorted(SAMPLERS))}.')
        steps = self._int(steps, 'Steps', 1, MAX_STEPS)
        if random_seed:
            seed = secrets.randbelow(MAX_SEED + 1)
        seed = self._int(seed, 'Seed', 0, MAX_SEED)
        return dict(prompt=prompt,
                    negative_prompt=(negative_prompt or '').strip() or None,
                    batch_size=batch_size, guidance=guidance,
                    sampler=sampler, steps=steps, seed=seed)

    @staticmethod
    def _number(value, name, low, high):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise gr.Error(f'{name} must be a number in [{low}, {high}], '
                           f'got {value!r}.') from None
        if not low <= value <= high:  # NaN fails too
            raise gr.Error(f'{name} must be in [{low}, {high}], got '
                           f'{value:g}.')
        return value

    @classmethod
    def _int(cls, value, name, low, high):
        number = cls._number(value, name, low, high)
        if number != int(number):
            raise gr.Error(f'{name} must be a whole number in [{low}, '
                           f'{high}], got {number:g}.')
        return int(number)

    def inpaint_inputs(self, editor):
        """The image and mask painted in the page's editor, as ``infer``
        takes them.

        Args:
            editor (dict | None): Gradio's ImageEditor value: ``background``
                (H, W, 3 or 4) uint8, ``layers`` (RGBA brush strokes).

        Returns:
            tuple[Tensor, Tensor]: ``init_image`` (1, 3, S, S) in [-1, 1]
            and ``mask`` (1, 1, S, S), 1 = keep, 0 = painted (generate).
        """
        import numpy as np
        import torch
        from PIL import Image
        editor = editor or {}
        image = editor.get('background')
        layers = [x for x in editor.get('layers') or [] if x is not None]
        if image is None:
            raise gr.Error('No image to inpaint: upload an image first, '
                           'then paint over the region to fill.')
        image = np.asarray(image)
        height, width = image.shape[:2]
        if height != width:
            raise gr.Error(f'The image is {width}x{height}: the model needs '
                           f'a square image (it is resized to '
                           f'{self.out_size}x{self.out_size}); crop it '
                           'square first.')
        painted = np.zeros((height, width), dtype=bool)
        for layer in layers:
            layer = np.asarray(layer)
            if layer.shape[:2] == painted.shape and layer.ndim == 3 \
                    and layer.shape[2] == 4:
                painted |= layer[..., 3] > 0
        if not painted.any():
            raise gr.Error('Nothing is painted: paint over the region of '
                           'the image to fill.')
        size = (self.out_size, self.out_size)
        rgb = Image.fromarray(image[..., :3].astype(np.uint8)).resize(
            size, Image.BICUBIC)
        keep = Image.fromarray(~painted).resize(size, Image.NEAREST)
        init = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 127.5 - 1)
        mask = torch.from_numpy(np.asarray(keep, dtype=np.float32))
        return init.permute(2, 0, 1)[None], mask[None, None]

    # ---------------------------------------------------------- sampling
    def scheduler(self, name):
        """The named sampler (built once, from the config's settings)."""
        if name not in self._schedulers:
            from projects.glide.models.glide import build_scheduler
            self._schedulers[name] = build_scheduler(
                dict(self._scheduler_cfg, type=SAMPLERS[name]))
        return self._schedulers[name]

    def generate(self, prompt, negative_prompt, batch_size, guidance,
                 sampler, steps, seed, random_seed,
                 request: gr.Request = None, progress=gr.Progress()):
        """Text to image (the page's Generate button).

        Returns:
            tuple: gallery items ``[(png, caption)]``, the PNG paths (for
            download), the seed used and a status line.
        """
        return self._run(None, prompt, negative_prompt, batch_size, guidance,
                         sampler, steps, seed, random_seed, request, progress)

    def inpaint(self, editor, prompt, negative_prompt, batch_size, guidance,
                sampler, steps, seed, random_seed,
                request: gr.Request = None, progress=gr.Progress()):
        """Inpainting (the Inpaint tab's button); returns as
        :meth:`generate`."""
        if not self.inpainting:
            raise gr.Error(f'{os.path.basename(self.config)} is not an '
                           'inpainting model: start the page with an '
                           '*-inpaint.py config.')
        return self._run(editor, prompt, negative_prompt, batch_size,
                         guidance, sampler, steps, seed, random_seed,
                         request, progress)

    def cancel(self, request: gr.Request = None):
        """Stop this page's running request at its next step."""
        session = getattr(request, 'session_hash', None)
        if session in self._running:
            self._cancel.add(session)
            return 'Stopped: no images were made.'
        return 'Nothing is running.'

    def _run(self, editor, prompt, negative_prompt, batch_size, guidance,
             sampler, steps, seed, random_seed, request, progress):
        v = self.check(prompt, negative_prompt, batch_size, guidance,
                       sampler, steps, seed, random_seed)
        init_image = mask = None
        if editor is not None or self.inpainting:
            init_image, mask = self.inpaint_inputs(editor)
        session = getattr(request, 'session_hash', None)

        def on_step(done, total):
            if progress is not None:
                progress((done, total), desc='Sampling', unit='steps')
            if session in self._cancel:
                raise Cancelled(f'Stopped at step {done} of {total}: no '
                                'images were made.')

        with self._lock:
            self._running.add(session)
            self._cancel.discard(session)
            self.model.diffusion_scheduler = self.scheduler(v['sampler'])
            start = time.time()
            try:
                samples = self.model.infer(
                    prompt=v['prompt'], batch_size=v['batch_size'],
                    negative_prompt=v['negative_prompt'],
                    guidance_scale=v['guidance'],
                    num_inference_steps=v['steps'], seed=v['seed'],
                    init_image=init_image, mask=mask,
                    callback=on_step)['samples']
            except Cancelled as stop:
                return [], [], v['seed'], str(stop)
            except (ValueError, TypeError, FloatingPointError,
                    MemoryError) as err:
                raise gr.Error(str(err)) from None
            except Exception as err:  # the page gets a message, not a trace
                traceback.print_exc()
                raise gr.Error(f'Sampling failed ({type(err).__name__}); '
                               'the server log has the details.') from None
            finally:
                self._running.discard(session)
                self._cancel.discard(session)
            seconds = time.time() - start
        paths = self._save(samples, v, seconds, inpainted=mask is not None)
        items = [(p, f'{v["seed"]} #{i}') for i, p in enumerate(paths)]
        status = (f'{len(paths)} image{"s" * (len(paths) > 1)} in '
                  f'{seconds:.1f} s, seed {v["seed"]}; saved in '
                  f'{self.shown_dir}')
        return items, paths, v['seed'], status

    def _save(self, samples, v, seconds, inpainted):
        """Each sample as a PNG with its settings; returns the paths."""
        import torch
        from PIL import Image
        images = ((samples + 1) * 127.5).round().clamp(0, 255).to(
            torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        with self._lock:  # a name no other request (or earlier run) has
            while True:
                self._count += 1
                stamp = f'{time.strftime("%Y%m%d-%H%M%S")}-{self._count:03d}'
                if not any(os.path.exists(os.path.join(
                        self.out_dir, f'{stamp}-seed{v["seed"]}-{i}.png'))
                        for i in range(len(images))):
                    break
        settings = dict(
            prompt=v['prompt'], negative_prompt=v['negative_prompt'],
            batch_size=v['batch_size'], seed=v['seed'],
            guidance=v['guidance'],
            sampler=type(self.model.diffusion_scheduler).__name__,
            num_steps=v['steps'], inpainted=inpainted, config=self.config,
            checkpoint=self.checkpoint or 'none (random weights)',
            seconds=round(seconds, 2))
        paths = []
        for i, array in enumerate(images):
            path = os.path.join(self.out_dir,
                                f'{stamp}-seed{v["seed"]}-{i}.png')
            save_png(Image.fromarray(array), path, dict(settings, index=i))
            paths.append(path)
        return paths


def build_page(demo):
    """The Gradio page for a :class:`WebDemo`."""
    name = os.path.basename(demo.config)
    with gr.Blocks(title='GLIDE', css=CSS) as page:
        gr.Markdown(f'# GLIDE\n`{name}`, {demo.out_size}x{demo.out_size} '
                    'px. Images are kept in '
                    f'`{demo.shown_dir}` with their settings '
                    'in the PNG metadata.')
        if not demo.checkpoint:
            gr.Markdown('**No checkpoint: the weights are random and the '
                        'images are noise.**')
        tabs = [('Text to image', False)]
        if demo.inpainting:
            tabs = [('Inpaint', True)]
        for title, inpaint in tabs:
            with gr.Tab(title):
                with gr.Row():
                    with gr.Column():
                        editor = None
                        if inpaint:
                            editor = gr.ImageEditor(
                                label='Image: paint the region to fill',
                                type='numpy', sources=['upload'],
                                brush=gr.Brush(colors=['#ff00ff'],
                                               color_mode='fixed'))
                        prompt = gr.Textbox(label='Prompt', lines=2,
                                            elem_id='prompt')
                        negative = gr.Textbox(label='Negative prompt',
                                              elem_id='negative')
                        with gr.Row():
                            batch = gr.Slider(1, MAX_BATCH, value=4, step=1,
                                              label='Batch size')
                            guidance = gr.Number(
                                demo.default_guidance, minimum=0,
                                maximum=MAX_GUIDANCE,
                                label='Guidance scale (1 = off)')
                        with gr.Row():
                            sampler = gr.Dropdown(
                                sorted(SAMPLERS), value=demo.default_sampler,
                                label='Sampler')
                            steps = gr.Slider(1, MAX_STEPS,
                                              value=demo.default_steps,
                                              step=1, label='Steps')
                        with gr.Row():
                            seed = gr.Number(0, precision=0, minimum=0,
                                             maximum=MAX_SEED, label='Seed',
                                             elem_id='seed')
                            random_seed = gr.Checkbox(
                                False, label='Random seed (shown after)')
                        with gr.Row():
                            run = gr.Button('Generate', variant='primary',
                                            elem_id='generate')
                            stop = gr.Button('Stop', elem_id='stop')
                        if name.startswith('glide_shapes'):
                            gr.Examples(SHAPES_EXAMPLES, [prompt],
                                        label='Captions the model knows')
                    with gr.Column():
                        gallery = gr.Gallery(label='Images', columns=4,
                                             elem_id='gallery',
                                             elem_classes='pixelated')
                        status = gr.Markdown(elem_id='status')
                        files = gr.File(label='PNG files (with settings)',
                                        file_count='multiple')
                fields = [prompt, negative, batch, guidance, sampler, steps,
                          seed, random_seed]
                fn = demo.generate
                if inpaint:
                    fields, fn = [editor] + fields, demo.inpaint
                outputs = [gallery, files, seed, status]
                events = [run.click(fn, fields, outputs,
                                    concurrency_id='sampling'),
                          prompt.submit(fn, fields, outputs,
                                        concurrency_id='sampling')]
                stop.click(demo.cancel, None, status, cancels=events,
                           queue=False)
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
