"""The web page's layout: the Gradio components of a :class:`WebDemo` and
their events.

Uploads reach the worker unread (:func:`upload_image`) or read with the
limits of :mod:`.uploads` (:func:`upload_editor`), never decoded by Gradio
first: a decompression bomb or a damaged file gets the page's message."""
import os

import gradio as gr
from gradio.data_classes import FileData

from ..api import SAMPLERS
from .common import page_error
from ..images import MAX_UPLOAD_SIDE, UploadError, read_rgba
from .worker import (MAX_BATCH, MAX_GUIDANCE, MAX_SEED, MAX_STRENGTH,
                     MIN_STRENGTH, SHAPES_EXAMPLES)

#: The inpainting brush: magenta, seen on black, white and gray scenes.
BRUSH = '#ff00ff'
#: The queue's default length: requests beyond it are told the page is
#: busy ("Queue is full").
MAX_QUEUE = 32
#: The largest upload Gradio accepts.
MAX_FILE_SIZE = '50mb'
INPAINT_HELP = (
    '1. Upload a square image (the upload button under the canvas).\n'
    '2. Pick the brush (the pen button under the canvas) and paint, in '
    'magenta, over the region to fill.\n'
    '3. Describe the whole image in the prompt and press Inpaint.')
EDIT_HELP = (
    'Upload a square image (up to {side}x{side} pixels; any mode is '
    'converted to RGB, transparent pixels become white) and describe the '
    'image you want: it is resized to {size}x{size}, noised to the '
    'strength and sampled back under the prompt. Small strengths keep the '
    'layout and colours, 1 draws anew.')
# Crisp pixels for small images shown large.
CSS = '.pixelated img { image-rendering: pixelated; }'


def upload_image(**kwargs):
    """A ``gr.Image`` handing the worker the uploaded file's path unread
    (the worker reads it with the limits of :mod:`.uploads`)."""
    image = gr.Image(type='filepath', **kwargs)
    plain = image.preprocess

    def preprocess(payload):
        if payload is not None and payload.path is not None:
            return str(payload.path)
        return plain(payload)

    # On the instance: a subclass of a Gradio component makes Gradio write
    # a .pyi file beside this module.
    image.preprocess = preprocess
    return image


def read_editor_file(file):
    """An ImageEditor's image (a file or its bytes) read with the limits of
    :mod:`.uploads`: an RGBA array (H, W, 4); the error is the page's."""
    if file is None:
        return None
    source = file.path if isinstance(file, FileData) else bytes(file)
    try:
        return read_rgba(source)
    except UploadError as err:
        raise page_error(str(err)) from None


def upload_editor(**kwargs):
    """A ``gr.ImageEditor`` whose images the worker gets as RGBA arrays
    read by :func:`read_editor_file` (not decoded by Gradio first)."""
    editor = gr.ImageEditor(type='numpy', **kwargs)
    editor.convert_and_format_image = read_editor_file  # see upload_image
    return editor


def header(demo):
    """The page's title, the model's description and its adapters."""
    name = os.path.basename(demo.config)
    size = demo.model.unet.image_size
    model = f'{size}x{size} px'
    if demo.model.unet_up is not None:
        model += (f', upsampled to {demo.out_size}x{demo.out_size} px ('
                  f'{demo.stages(demo.default_steps)[1][1]} steps)')
    gr.Markdown(f'# GLIDE\n`{name}`: {model}. Images are kept in '
                f'`{demo.shown_dir}` with their settings in the PNG '
                'metadata.')
    if demo.loras:
        adapters = ', '.join(f'`{os.path.basename(a["file"])}` (scale '
                             f'{a["scale"]:g})' for a in demo.loras)
        gr.Markdown(f'LoRA adapters: {adapters}.', elem_id='loras')
    if not demo.checkpoint:
        gr.Markdown('**No checkpoint: the weights are random and the '
                    'images are noise.**')


def image_field(demo, kind):
    """The image fields before the prompt: the editor (``'inpaint'``), the
    upload and strength (``'edit'``), none (``'generate'``)."""
    if kind == 'inpaint':
        gr.Markdown(INPAINT_HELP, elem_id='inpaint-help')
        return [upload_editor(
            label='Image: upload it, pick the brush, paint the region to fill',
            sources=['upload'], elem_id='editor',
            brush=gr.Brush(colors=[BRUSH], default_color=BRUSH,
                           color_mode='fixed'))]
    if kind == 'edit':
        gr.Markdown(EDIT_HELP.format(side=MAX_UPLOAD_SIDE,
                                     size=demo.out_size), elem_id='edit-help')
        image = upload_image(label='Image to edit', sources=['upload'],
                             elem_id='edit-image')
        strength = gr.Slider(MIN_STRENGTH, MAX_STRENGTH, value=0.6, step=0.05,
                             label='Strength',
                             info=f'{MIN_STRENGTH:g} to {MAX_STRENGTH:g}: '
                             'small keeps the image, 1 draws anew',
                             elem_id='edit-strength')
        return [image, strength]
    return []


def input_fields(demo, kind, prefix=''):
    """The input column: the fields (in the worker's order: the image
    fields first) and the buttons; ``prefix`` makes the tab's element ids.

    Number fields without a minimum or maximum: the server checks each and
    names the field and its range (Gradio's own check would not name it,
    and a slider would silently clamp a value).

    Returns:
        tuple: (fields, run button, stop button, prompt, seed field).
    """
    fields = image_field(demo, kind)
    prompt = gr.Textbox(label='Prompt', lines=2, elem_id=f'{prefix}prompt')
    note = gr.Markdown(elem_id=f'{prefix}vocabulary')
    negative = gr.Textbox(label='Negative prompt (guidance scale not 1)',
                          elem_id=f'{prefix}negative')
    with gr.Row():
        batch = gr.Number(4, label='Batch size', info=f'1 to {MAX_BATCH}',
                          step=1, elem_id=f'{prefix}batch')
        guidance = gr.Number(demo.default_guidance, step=0.5,
                             label='Guidance scale',
                             info=f'0 to {MAX_GUIDANCE:g}; 1 = off',
                             elem_id=f'{prefix}guidance')
    with gr.Row():
        sampler = gr.Dropdown(sorted(SAMPLERS), value=demo.default_sampler,
                              label='Sampler')
        steps = gr.Number(demo.default_steps, step=1, label='Steps',
                          info=f'1 to {demo.max_steps} (base model)',
                          elem_id=f'{prefix}steps')
    with gr.Row():
        seed = gr.Number(0, step=1, label='Seed', info=f'0 to {MAX_SEED}',
                         elem_id=f'{prefix}seed')
        random_seed = gr.Checkbox(False, label='Random seed (shown after)')
    with gr.Row():
        label = {'inpaint': 'Inpaint', 'edit': 'Edit'}.get(kind, 'Generate')
        run = gr.Button(label, variant='primary', elem_id=f'{prefix}generate')
        stop = gr.Button('Stop', elem_id=f'{prefix}stop')
    if demo.vocabulary is not None:
        gr.Examples(SHAPES_EXAMPLES, [prompt],
                    label='Captions the model knows')
        prompt.change(demo.vocabulary_note, prompt, note, queue=False,
                      show_progress='hidden')
    fields += [prompt, negative, batch, guidance, sampler, steps, seed,
               random_seed]
    return fields, run, stop, prompt, seed


def tab(demo, kind, prefix=''):
    """One tab (``kind``: ``'generate'``, ``'inpaint'`` or ``'edit'``): the
    fields, the images, and their events (API name ``/<kind>``)."""
    with gr.Row():
        with gr.Column():
            fields, run, stop, prompt, seed = input_fields(demo, kind, prefix)
        with gr.Column():
            # No captions: a caption badge would hide a corner of the image.
            gallery = gr.Gallery(label='Images', columns=4,
                                 elem_id=f'{prefix}gallery',
                                 elem_classes='pixelated')
            status = gr.Markdown(elem_id=f'{prefix}status')
            files = gr.File(label='PNG files (with settings)',
                            file_count='multiple')
    fn = getattr(demo, f'page_{kind}')
    outputs = [gallery, files, seed, status]
    # show_progress='hidden': the status line shows the progress, and an
    # error leaves the outputs as they were (no overlay, no badges).
    events = [trigger(fn, fields, outputs, concurrency_id='sampling',
                      show_progress='hidden', api_name=name)
              for trigger, name in ((run.click, kind),
                                    (prompt.submit, False))]
    stop.click(demo.cancel, None, status, cancels=events, queue=False,
               api_name=f'stop_{kind}')


def launch_options(demo, host='127.0.0.1', port=7860):
    """``page.launch``'s arguments: no share link, no API page, and no
    file served but the images in ``demo.out_dir`` (and Gradio's copies of
    the images and uploads); uploads of at most :data:`MAX_FILE_SIZE`."""
    return dict(server_name=host, server_port=port, share=False,
                allowed_paths=[demo.out_dir], show_api=False, quiet=True,
                max_file_size=MAX_FILE_SIZE)


def build_page(demo, max_queue=MAX_QUEUE):
    """The Gradio page for a :class:`WebDemo`.

    Args:
        demo (WebDemo): The page's logic.
        max_queue (int): Requests the queue holds; one more is told the
            page is busy ("Queue is full! Please try again.").
    """
    # Gradio's copies of the images and uploads: deleted after an hour.
    with gr.Blocks(title='GLIDE', css=CSS, delete_cache=(600, 3600)) as page:
        header(demo)
        if demo.inpainting:
            with gr.Tab('Inpaint'):
                tab(demo, 'inpaint')
        else:
            with gr.Tab('Text to image'):
                tab(demo, 'generate')
            with gr.Tab('Edit'):
                tab(demo, 'edit', prefix='edit-')
    page.queue(default_concurrency_limit=1, max_size=max_queue)
    return page
