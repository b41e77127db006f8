"""A web page for GLIDE: prompt to images, editing and inpainting, in the
browser.

Examples::

    make web                      # the shapes demo model on 127.0.0.1:7860
    python tools/web_demo.py      # the same
    python tools/web_demo.py CONFIG [CHECKPOINT] [--port 7861]
    python tools/web_demo.py --lora style.safetensors:0.8   # an adapter
    python tools/web_demo.py \\
        projects/glide/configs/glide_inpaint-classifier-free_laion-64x64.py \\
        glide-64-inpaint.pth      # the inpainting tab instead

A text model's page has two tabs: "Text to image" and "Edit" (image to
image: an uploaded square image, RGB on white, resized to the model's output
size, is noised to the chosen strength and sampled back under the prompt).
An inpainting model's page has the "Inpaint" tab.

The page serves this machine only (127.0.0.1) unless ``--host`` says
otherwise (then it warns: anyone who reaches the port can use the page);
there is no public share link, and the only files it serves are its images
in ``--out-dir``. Requests from several tabs queue and run one at a time,
each getting its own images; past ``--max-queue`` waiting requests, a new
one is told the page is busy ("Queue is full! Please try again."). Every
image is written to ``--out-dir`` (default ``outputs/web``) as a PNG whose
text metadata (key ``glide``) holds the settings that made it, as
``tools/glide_sample.py`` writes them; the page's download buttons give
those files.

Every field is checked by the server with the checks that ``Glide.infer``
uses (``projects/glide/checks.py``); a bad value or upload gets a message
naming the field and its range, one line in the server log, and leaves the
last images in place. Uploads of more than 4096x4096 pixels, damaged files
and prompts over 1000 characters or with control characters are refused
(``docs/web.md`` lists the rules).
"""
import argparse
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
sys.path.insert(0, ROOT)

from projects.glide.runtime import require_environment  # noqa: E402

require_environment('tools/web_demo.py', ('torch', 'mmengine', 'mmagic',
                                          'gradio'))

from projects.glide.api import (DEMO_CHECKPOINT, DEMO_CONFIG,  # noqa: E402
                                DTYPES)
from projects.glide.web.common import StageProgress  # noqa: E402,F401
from projects.glide.web.page import (BRUSH, MAX_QUEUE,  # noqa: E402,F401
                                     build_page, launch_options)
from projects.glide.web.worker import (MAX_BATCH, MAX_SEED,  # noqa: E402,F401
                                       WebDemo)

#: Addresses that only this machine reaches.
LOCAL_HOSTS = ('127.0.0.1', 'localhost', '::1')


def lora_spec(text):
    """``PATH[:SCALE]`` as (path, scale); the scale defaults to 1."""
    path, _, scale = text.rpartition(':')
    if path:
        try:
            return path, float(scale)
        except ValueError:
            pass  # a ':' in the path
    return text, 1.0


def build_parser():
    p = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', nargs='?', default=DEMO_CONFIG,
                   help='model config (default: the shapes demo config)')
    p.add_argument('checkpoint', nargs='?', default=None,
                   help='weights (.pth or .safetensors; default: the shipped '
                   'shapes weights with the default config)')
    p.add_argument('--lora', action='append', default=[], type=lora_spec,
                   metavar='PATH[:SCALE]',
                   help='a LoRA adapter file (tools/train_lora.py) and its '
                   'scale (default 1); repeat it to load several (their '
                   'terms add up; each file name once)')
    p.add_argument('--host', default='127.0.0.1',
                   help='address to serve on (default 127.0.0.1: this '
                   'machine only; 0.0.0.0: anyone on the network, with a '
                   'warning)')
    p.add_argument('--port', type=int, default=7860)
    p.add_argument('--max-queue', type=int, default=MAX_QUEUE,
                   help='requests that may wait; one more is told the page '
                   f'is busy (default {MAX_QUEUE})')
    p.add_argument('--out-dir', default='outputs/web',
                   help='where the PNGs are kept (default outputs/web)')
    p.add_argument('--device', default='cpu')
    p.add_argument('--dtype', choices=DTYPES, default=None)
    return p


def parse_args(argv=None, parser=None):
    p = parser or build_parser()
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
    if args.max_queue < 1:
        p.error(f'--max-queue must be at least 1, got {args.max_queue}')
    return args


def exposure_warning(host, port):
    """The warning for a page served beyond this machine ('' when it is
    not)."""
    if host in LOCAL_HOSTS:
        return ''
    return (f'web_demo: WARNING: serving on {host}:{port}: anyone who can '
            'reach this machine on that port can use the page (run the '
            'model, see and download its images); there is no password. '
            'Use --host 127.0.0.1 to serve this machine only.')


def main(argv=None):
    parser = build_parser()
    args = parse_args(argv, parser)
    demo = WebDemo(args.config, args.checkpoint, args.device, args.out_dir,
                   args.dtype)
    try:
        demo.load_loras(args.lora)
    except (OSError, ValueError) as err:
        parser.error(f'--lora: {err}')
    page = build_page(demo, args.max_queue)
    warning = exposure_warning(args.host, args.port)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    print(f'GLIDE web demo: http://{args.host}:{args.port}/ (Ctrl+C stops; '
          f'images kept in {demo.shown_dir})', flush=True)
    page.launch(**launch_options(demo, args.host, args.port))


if __name__ == '__main__':
    from projects.glide.runtime import configure_threads
    configure_threads()
    main()
