"""tools/web_demo.py: the page's logic, and the page in a real browser.

The logic (checking, sampling, saving, cancelling, inpainting inputs) is
tested on the tiny configs with a 3-step upsampler; the end-to-end tests
serve the shipped shapes model, and the tiny inpainting model, on free local
ports and drive them with headless Chromium (Debian's ``chromium`` and
``chromium-driver``, installed by ``make browser``) as a user would.
"""
import json
import os
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from projects.glide.api import VOCABULARY_KEY
from projects.glide.web.worker import SHAPES_EXAMPLES
from tests.conftest import ROOT, TEST_CONFIGS
from tools.web_demo import (BRUSH, MAX_BATCH, MAX_SEED, StageProgress,
                            WebDemo)
from tools.web_load_test import start_server, stop_server

TINY = TEST_CONFIGS / 'glide_tiny_16-32.py'
TINY_INPAINT = TEST_CONFIGS / 'glide_tiny_16-32-inpaint.py'
PROMPT = 'a red cube'
#: prompt, negative prompt, batch, guidance, sampler, steps, seed, random
GOOD = (PROMPT, '', 2, 3.0, 'ddim', 2, 7, False)
UPSAMPLER_STEPS = 3


def fast_config(folder, base, **keys):
    """A config file in ``folder``: ``base`` with a 3-step upsampler (and
    the top-level ``keys``)."""
    path = folder / f'fast_{base.name}'
    lines = [f'_base_ = {str(base)!r}',
             'model = dict(test_cfg=dict(num_inference_steps_up='
             f'{UPSAMPLER_STEPS}))']
    lines += [f'{key} = {value!r}' for key, value in keys.items()]
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    """The tiny cascade, knowing the shapes captions' words only."""
    folder = tmp_path_factory.mktemp('web')
    config = fast_config(folder, TINY, **{VOCABULARY_KEY: 'shapes'})
    return WebDemo(config, out_dir=str(folder / 'out'))


@pytest.fixture(scope='module')
def inpaint_demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp('web')
    return WebDemo(fast_config(folder, TINY_INPAINT),
                   out_dir=str(folder / 'out'))


def with_(index, value):
    values = list(GOOD)
    values[index] = value
    return values


def settings_of(path):
    return json.loads(Image.open(path).text['glide'])


@pytest.mark.parametrize('values, message', [
    (with_(0, '   '), 'Prompt is empty'),
    (with_(2, 0), f'Batch size must be an int in [1, {MAX_BATCH}], got 0'),
    (with_(2, MAX_BATCH + 1), f'Batch size must be an int in [1, '
     f'{MAX_BATCH}], got {MAX_BATCH + 1}'),
    (with_(2, 1.5), 'Batch size must be an int in [1, 8], got 1.5'),
    (with_(3, -1.0), 'Guidance scale must be a number in [0, 20], got -1'),
    (with_(3, 25.0), 'Guidance scale must be a number in [0, 20], got 25'),
    (with_(3, float('nan')), 'Guidance scale must be a number in [0, 20], '
     'got nan'),
    (with_(3, 'lots'), "Guidance scale must be a number in [0, 20], got "
     "'lots'"),
    (with_(4, 'euler'), "Sampler must be one of ancestral, ddim, dpm++2m, "
     "got 'euler'"),
    (with_(5, 0.0), 'Steps must be an int in [1, 1000], got 0'),
    (with_(5, 1001), 'Steps must be an int in [1, 1000], got 1001'),
    (with_(6, -5.0), f'Seed must be an int in [0, {MAX_SEED}], got -5'),
    (with_(6, None), f'Seed must be an int in [0, {MAX_SEED}], got None'),
])
def test_a_bad_value_gets_the_shared_checkers_message_and_one_log_line(
        demo, capsys, values, message):
    capsys.readouterr()
    with pytest.raises(gr.Error, match=None) as err:
        demo.generate(*values)
    assert message in err.value.message
    assert not err.value.print_exception  # no traceback in the server log
    assert capsys.readouterr().err.splitlines() == [
        f'web_demo: refused: {err.value.message}']


def test_generate_saves_pngs_with_the_settings_of_both_stages(demo):
    lines = []
    paths, files, seed, status = demo.generate(
        *with_(1, 'blurry'), progress=lines.append)
    assert seed == 7 and paths == files and len(paths) == 2
    assert status.startswith('2 images in') and 'seed 7' in status
    for i, path in enumerate(paths):
        assert os.path.dirname(path) == demo.out_dir
        assert Image.open(path).size == (32, 32)
        settings = settings_of(path)
        assert settings['prompt'] == PROMPT and settings['seed'] == 7
        assert settings['negative_prompt'] == 'blurry'
        assert settings['sampler'] == 'GlideDDIMScheduler'
        assert settings['steps'] == settings['num_steps'] == 2
        assert settings['sampler_up'] == type(
            demo.model.diffusion_scheduler_up).__name__
        assert settings['steps_up'] == settings['num_steps_up'] == \
            UPSAMPLER_STEPS
        assert settings['upsample_temp'] == demo.model.upsample_temp
        assert settings['index'] == i
    # One line per step, counted per stage.
    assert [line.split(',')[0] for line in lines] == [
        'Base model 16x16: step 1 of 2', 'Base model 16x16: step 2 of 2',
        'Upsampler 32x32: step 1 of 3', 'Upsampler 32x32: step 2 of 3',
        'Upsampler 32x32: step 3 of 3']
    assert lines[0].endswith('; then Upsampler 32x32 (3 steps)')
    assert 'then' not in lines[-1]


def test_a_setting_that_is_not_used_is_not_recorded(demo):
    # Guidance 1 turns guidance off: the negative prompt is not used.
    values = with_(1, 'blurry')
    values[2], values[3] = 1, 1.0
    settings = settings_of(demo.generate(*values)[0][0])
    assert settings['guidance'] == 1.0 and 'negative_prompt' not in settings


def test_the_page_streams_the_progress_then_the_images(demo):
    keep = gr.update()
    *steps, (paths, files, seed, status) = demo.page_generate(*GOOD)
    assert len(steps) == 2 + UPSAMPLER_STEPS
    assert all(out[:3] == (keep, keep, keep) for out in steps)
    assert steps[0][3].startswith('Base model 16x16: step 1 of 2')
    assert len(paths) == 2 and status.startswith('2 images in')
    # An error: its message in the status line (the images kept), then the
    # page's error.
    outputs = demo.page_generate(*with_(5, 0))
    assert next(outputs) == (keep, keep, keep, 'No images: Steps must be an '
                             'int in [1, 1000], got 0 (int).')
    with pytest.raises(gr.Error, match=None):
        next(outputs)


def test_the_eta_follows_each_stages_own_pace():
    times = iter([100.0, 101.0, 102.0, 107.0, 112.0])
    lines = StageProgress([('Base', 2), ('Up', 2)], clock=lambda: next(times))
    assert lines(1) == 'Base: step 1 of 2, about 1.0 s left; then Up ' \
        '(2 steps)'
    assert lines(2).startswith('Base: step 2 of 2, about 0.0 s left')
    # The upsampler's steps take 5 s each, from the end of the base stage.
    assert lines(3) == 'Up: step 1 of 2, about 5.0 s left'
    assert lines(4) == 'Up: step 2 of 2, about 0.0 s left'


def test_the_same_seed_gives_the_same_images_and_random_shows_its_seed(demo):
    first = demo.generate(*GOOD)[0]
    again = demo.generate(*GOOD)[0]
    for a, b in zip(first, again):
        assert (np.asarray(Image.open(a)) == np.asarray(Image.open(b))).all()
    paths, _, seed, status = demo.generate(*with_(7, True))
    assert 0 <= seed <= MAX_SEED and f'seed {seed}' in status
    assert settings_of(paths[0])['seed'] == seed


def test_each_sampler_can_be_chosen(demo):
    for name, cls in (('ancestral', 'GlideAncestralScheduler'),
                      ('dpm++2m', 'GlideDPMSolverScheduler')):
        paths = demo.generate(*with_(4, name))[0]
        assert settings_of(paths[0])['sampler'] == cls


def test_stop_ends_sampling_at_the_next_step_and_keeps_the_images(demo):
    request = SimpleNamespace(session_hash='tab-1')
    other = SimpleNamespace(session_hash='tab-2')
    lines = []

    def progress(line):
        lines.append(line)
        if len(lines) == 2:
            assert demo.cancel(other) == 'Nothing is running.'
            assert demo.cancel(request).startswith('Stopped')

    gallery, files, seed, status = demo.generate(
        *with_(5, 10), request=request, progress=progress)
    assert gallery == files == gr.update()  # the last images stay
    assert status == ('Stopped at step 2 of 10 (Base model 16x16): no '
                      'images were made.') and len(lines) == 2
    # The stop was for that run only: the next one runs to the end.
    assert len(demo.generate(*GOOD, request=request)[0]) == 2


def test_words_outside_a_closed_vocabulary_are_named(demo, inpaint_demo):
    note = demo.vocabulary_note('A red DOG, running')
    assert note.startswith("The model does not know 'dog', 'running':")
    assert "'red'" not in note and 'circle' in note  # the known words
    assert demo.vocabulary_note(
        'a small blue square in the bottom right corner, white background'
    ) == ''
    status = demo.generate(*with_(2, 1))[3]
    assert status.endswith("The model does not know 'cube': it learned only "
                           'the words of its training captions (a, at, '
                           'background, black, blue, bottom, circle, '
                           'corner, gray, green, in, large, left, of, on, '
                           'picture, red, right, small, square, the, top, '
                           'triangle, white, with, yellow).')
    assert inpaint_demo.vocabulary is None
    assert inpaint_demo.vocabulary_note('a dog') == ''  # any word


def test_a_text_model_refuses_inpainting(demo):
    with pytest.raises(gr.Error, match=None) as err:
        demo.inpaint(None, *GOOD)
    assert 'not an inpainting model' in err.value.message


def editor(size=(40, 40), painted=True, uploaded=True):
    """An ImageEditor value as the page sends it: RGBA, the background all
    transparent when nothing was uploaded."""
    image = np.full(size + (4, ), 200, np.uint8)
    image[..., 3] = 255 if uploaded else 0
    if not uploaded:
        image[..., :3] = 0
    layer = np.zeros(size + (4, ), np.uint8)
    if painted:
        layer[:size[0] // 2, :] = (255, 0, 255, 255)  # the top half
    return dict(background=image, layers=[layer], composite=image)


@pytest.mark.parametrize('value, message', [
    (None, 'No image to inpaint: upload an image first'),
    (dict(background=None, layers=[np.ones((8, 8, 4), np.uint8)]),
     'No image to inpaint: upload an image first'),
    (editor(uploaded=False, painted=False),
     'No image to inpaint: upload an image first'),
    (editor(uploaded=False), 'No image to inpaint: upload an image first'),
    (editor(size=(40, 30)), 'The image is 30x40: the model needs a square'),
    (editor(painted=False), 'Nothing is painted: pick the brush'),
])
def test_bad_inpainting_input_gives_a_readable_error(inpaint_demo, value,
                                                     message):
    with pytest.raises(gr.Error, match=None) as err:
        inpaint_demo.inpaint(value, *GOOD)
    assert message in err.value.message


def test_the_painted_region_is_generated_and_the_rest_kept(inpaint_demo):
    init, mask = inpaint_demo.inpaint_inputs(editor())
    assert init.shape == (1, 3, 32, 32) and mask.shape == (1, 1, 32, 32)
    assert (mask[..., :16, :] == 0).all() and (mask[..., 16:, :] == 1).all()
    assert np.allclose(init.numpy(), 200 / 127.5 - 1, atol=1e-5)
    paths = inpaint_demo.inpaint(editor(), *GOOD)[0]
    pixels = np.asarray(Image.open(paths[0]), dtype=np.int32)
    assert np.abs(pixels[16:] - 200).max() <= 1  # kept (8-bit rounding)
    assert np.abs(pixels[:16] - 200).max() > 10  # generated
    assert settings_of(paths[0])['inpainted']


# ------------------------------------------------------------ the browser
def browser_paths():
    """Chromium and its driver (Debian's packages, or the environment's
    ``GLIDE_CHROMIUM`` / ``GLIDE_CHROMEDRIVER``)."""
    chromium = os.environ.get('GLIDE_CHROMIUM') or shutil.which(
        'chromium') or shutil.which('chromium-browser')
    driver = os.environ.get('GLIDE_CHROMEDRIVER') or shutil.which(
        'chromedriver')
    if not (chromium and driver):
        pytest.fail('the browser test needs Chromium and chromedriver: '
                    '`make browser` installs them (Debian: apt-get install '
                    'chromium chromium-driver)')
    return chromium, driver


def serve(out, *args):
    """tools/web_demo.py with ``args`` on a free local port
    (``tools/web_load_test.py``'s ``start_server``), its log beside
    ``out``; yields the server once it answers."""
    server = start_server(str(out), *args, timeout=180)
    yield SimpleNamespace(url=server.url, out=out, proc=server.proc,
                          log=Path(server.log))
    stop_server(server)


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    """The default page (shipped shapes model)."""
    yield from serve(tmp_path_factory.mktemp('served'))


@pytest.fixture(scope='module')
def inpaint_server(tmp_path_factory):
    """The tiny inpainting model's page (random weights)."""
    out = tmp_path_factory.mktemp('served-inpaint')
    yield from serve(out, fast_config(out, TINY_INPAINT))


@pytest.fixture(scope='module')
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    chromium, driver = browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage',
                '--window-size=1280,1400'):
        options.add_argument(arg)
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    yield chrome
    chrome.quit()


def find(browser, css):
    from selenium.webdriver.common.by import By
    return browser.find_element(By.CSS_SELECTOR, css)


def wait(browser, condition, timeout=60):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(browser, timeout, poll_frequency=0.2).until(
        condition)


def open_page(browser, url):
    browser.get(url)
    return wait(browser, lambda b: find(b, '#prompt textarea'))


def type_into(box, text):
    """Replace a field's text, as a user does (then leave the field)."""
    from selenium.webdriver.common.keys import Keys
    box.send_keys(Keys.CONTROL, 'a')
    box.send_keys(Keys.BACKSPACE)
    box.send_keys(str(text) + Keys.TAB)


def wait_for_images(browser, count=4, timeout=180):
    """The gallery's images once ``count`` of them have loaded."""
    from selenium.webdriver.common.by import By

    def loaded(b):
        images = [img for img in b.find_elements(By.CSS_SELECTOR,
                                                 '#gallery img')
                  if b.execute_script('return arguments[0].complete && '
                                      'arguments[0].naturalWidth > 0', img)]
        return images if len(images) >= count else False

    return wait(browser, loaded, timeout)


def wait_for_toast(browser, start):
    """The text of a message in the page that starts with ``start``."""
    from selenium.webdriver.common.by import By
    return wait(browser, lambda b: next(
        (e.text for e in b.find_elements(By.CSS_SELECTOR, '.toast-text')
         if e.text.startswith(start)), False))


def close_toasts(browser):
    """Close the page's messages (one at a time: each close re-renders)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    def closed(b):
        buttons = b.find_elements(By.CSS_SELECTOR, '.toast-close')
        if buttons:
            try:
                buttons[0].click()
            except StaleElementReferenceException:
                pass  # closed meanwhile
        return not buttons

    wait(browser, closed)


def shown_overlays(browser):
    """The status overlays shown over the page's fields (an "Error" badge
    after an error, or a progress overlay)."""
    return browser.execute_script(
        "return [...document.querySelectorAll('.wrap.default')].filter("
        "e => getComputedStyle(e).opacity !== '0').length")


def test_page_prompt_to_images_in_a_real_browser(server, browser):
    from selenium.webdriver.common.by import By
    box = open_page(browser, server.url)
    prompt = 'a large red circle in the top left corner, black background'
    type_into(box, prompt)
    find(browser, '#generate').click()
    images = wait_for_images(browser)  # the default batch
    assert len(images) == 4
    # No caption badge over the images' corners.
    assert not browser.find_elements(By.CSS_SELECTOR, '#gallery '
                                     '.caption-label')
    status = wait(browser, lambda b: find(b, '#status').text or False)
    assert status.startswith('4 images in') and 'seed 0' in status
    os.makedirs(os.path.join(ROOT, 'outputs'), exist_ok=True)
    browser.save_screenshot(os.path.join(ROOT, 'outputs', 'web_demo.png'))
    saved = sorted(server.out.glob('*.png'))
    assert len(saved) == 4
    settings = settings_of(saved[0])
    assert settings['prompt'] == prompt and 'steps_up' in settings

    # A word the model does not know is named under the prompt.
    type_into(box, 'a red dog')
    assert wait(browser, lambda b: find(b, '#vocabulary').text).startswith(
        "The model does not know 'dog'")
    # Bad input: a readable message in the page, and the server goes on.
    type_into(box, '')
    find(browser, '#generate').click()
    wait_for_toast(browser, 'Prompt is empty')
    assert 'Traceback' not in browser.page_source
    assert server.proc.poll() is None


BAD_FIELDS = [
    ('steps', 0, 'Steps must be an int in [1, 1000], got 0'),
    ('guidance', -1, 'Guidance scale must be a number in [0, 20], got -1'),
    ('guidance', 25, 'Guidance scale must be a number in [0, 20], got 25'),
    ('seed', -5, f'Seed must be an int in [0, {MAX_SEED}], got -5'),
    ('batch', 0, 'Batch size must be an int in [1, 8], got 0'),
]


def test_a_bad_field_is_named_and_the_images_stay_in_a_real_browser(
        server, browser):
    box = open_page(browser, server.url)
    type_into(box, 'a small blue square in the bottom right corner, white '
              'background')
    type_into(find(browser, '#batch input'), 1)
    type_into(find(browser, '#steps input'), 5)
    find(browser, '#generate').click()
    wait_for_images(browser, count=1)
    for field, value, message in BAD_FIELDS:
        good = find(browser, f'#{field} input').get_attribute('value')
        type_into(find(browser, f'#{field} input'), value)
        find(browser, '#generate').click()
        assert wait_for_toast(browser, message).startswith(message)
        # The field keeps what was typed (no silent clamping), the image
        # stays, and no "Error" badge covers a field or the gallery.
        assert find(browser, f'#{field} input').get_attribute('value') == \
            str(value)
        assert len(wait_for_images(browser, count=1)) == 1
        assert shown_overlays(browser) == 0
        assert find(browser, '#status').text.startswith(
            f'No images: {message}')
        assert f'web_demo: refused: {message}' in server.log.read_text()
        close_toasts(browser)
        type_into(find(browser, f'#{field} input'), good)
    assert 'Traceback' not in server.log.read_text()
    # Corrected, it runs.
    find(browser, '#generate').click()
    wait(browser, lambda b: find(b, '#status').text.startswith('1 image in'),
         timeout=180)


def test_progress_per_stage_and_stop_keep_the_images_in_a_real_browser(
        server, browser):
    box = open_page(browser, server.url)
    type_into(box, 'a large yellow triangle in the top right corner, gray '
              'background')
    type_into(find(browser, '#batch input'), 1)
    type_into(find(browser, '#steps input'), 5)
    find(browser, '#generate').click()
    wait_for_images(browser, count=1)
    type_into(find(browser, '#steps input'), 1000)
    find(browser, '#generate').click()
    line = wait(browser, lambda b: re.match(
        r'Base model 32x32: step \d+ of 1000, about [\d.]+ s left; then '
        r'Upsampler 64x64 \(\d+ steps\)', find(b, '#status').text))
    assert line
    find(browser, '#stop').click()
    wait(browser, lambda b: find(b, '#status').text.startswith('Stopped'))
    assert len(wait_for_images(browser, count=1)) == 1
    assert shown_overlays(browser) == 0


def test_two_tabs_sampling_at_once_each_get_their_own_images(server,
                                                             browser):
    prompts = ['a small blue square in the bottom right corner, white '
               'background', 'a small green square in the bottom left '
               'corner, black background']
    before = set(server.out.glob('*.png'))
    tabs = []
    for prompt in prompts:
        browser.switch_to.new_window('tab')
        type_into(open_page(browser, server.url), prompt)
        tabs.append(browser.current_window_handle)
    for tab in tabs:  # both queued before either finishes
        browser.switch_to.window(tab)
        find(browser, '#generate').click()
    for tab, prompt in zip(tabs, prompts):
        browser.switch_to.window(tab)
        sources = [img.get_attribute('src') for img in
                   wait_for_images(browser)]
        assert len(sources) == 4
        names = {os.path.basename(src.split('=')[-1]) for src in sources}
        mine = [p for p in set(server.out.glob('*.png')) - before
                if p.name in names]
        assert len(mine) == 4
        assert {settings_of(p)['prompt'] for p in mine} == {prompt}


def magenta_pixels(element):
    """How many pixels of an element's screenshot are the brush's colour."""
    import io
    shot = np.asarray(Image.open(io.BytesIO(element.screenshot_as_png))
                      .convert('RGB'), dtype=np.int32)
    brush = np.array([int(BRUSH[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(shot - brush).max(-1) <= 8).sum())


def paint(browser):
    """Pick the brush and paint a stroke across the canvas's middle."""
    from selenium.webdriver.common.action_chains import ActionChains
    find(browser, '#editor button[aria-label="Draw button"]').click()
    canvas = find(browser, '#editor canvas')
    ActionChains(browser).move_to_element_with_offset(canvas, -50, 0) \
        .click_and_hold().move_by_offset(50, 0).move_by_offset(50, 0) \
        .release().perform()
    return canvas


def test_inpainting_page_in_a_real_browser(inpaint_server, browser,
                                           tmp_path):
    box = open_page(browser, inpaint_server.url)
    assert 'Pick the brush' in find(browser, '#inpaint-help').text
    type_into(box, 'a red cube')
    # Nothing uploaded: told to upload, whether or not something is painted.
    find(browser, '#generate').click()
    wait_for_toast(browser, 'No image to inpaint: upload an image first')
    close_toasts(browser)
    paint(browser)
    find(browser, '#generate').click()
    wait_for_toast(browser, 'No image to inpaint: upload an image first')
    close_toasts(browser)
    find(browser, '#editor button[aria-label="Clear canvas"]').click()
    # A black image: the brush's magenta shows on it.
    black = tmp_path / 'black.png'
    Image.new('RGB', (256, 256)).save(black)
    find(browser, '#editor input[type=file]').send_keys(str(black))
    wait(browser, lambda b: find(b, '#editor canvas').get_attribute(
        'width') == '256')
    canvas = paint(browser)
    assert magenta_pixels(canvas) > 100
    type_into(find(browser, '#batch input'), 2)
    type_into(find(browser, '#steps input'), 5)
    find(browser, '#generate').click()
    wait_for_images(browser, count=2)
    saved = sorted(inpaint_server.out.glob('*.png'))
    assert len(saved) == 2 and settings_of(saved[0])['inpainted']
    assert 'Traceback' not in inpaint_server.log.read_text()


def test_edit_tab_in_a_real_browser(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    open_page(browser, server.url)
    next(tab for tab in browser.find_elements(By.CSS_SELECTOR,
                                              'button[role=tab]')
         if tab.text == 'Edit').click()
    assert 'resized to 64x64' in wait(
        browser, lambda b: find(b, '#edit-help').text)
    picture = tmp_path / 'circle.png'
    Image.new('RGB', (128, 128), (128, 128, 128)).save(picture)
    find(browser, '#edit-image input[type=file]').send_keys(str(picture))
    type_into(find(browser, '#edit-prompt textarea'), SHAPES_EXAMPLES[0])
    type_into(find(browser, '#edit-batch input'), 1)
    type_into(find(browser, '#edit-steps input'), 5)
    before = set(server.out.glob('*.png'))
    find(browser, '#edit-generate').click()
    wait(browser, lambda b: find(b, '#edit-status').text.startswith(
        '1 image in'), timeout=180)
    assert browser.find_elements(By.CSS_SELECTOR, '#edit-gallery img')
    made, = set(server.out.glob('*.png')) - before
    settings = settings_of(made)
    assert settings['edited'] and settings['strength'] == 0.6
    assert settings['prompt'] == SHAPES_EXAMPLES[0]
    assert 'Traceback' not in server.log.read_text()
