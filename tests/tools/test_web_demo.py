"""tools/web_demo.py: the page's logic, and the page in a real browser.

The logic (checking, sampling, saving, cancelling, inpainting inputs) is
tested on the tiny configs; one end-to-end test serves the shipped shapes
model on a free local port and drives it with headless Chromium (Debian's
``chromium`` and ``chromium-driver``, installed by ``make test``).
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT, TEST_CONFIGS
from tools.web_demo import MAX_BATCH, MAX_SEED, MAX_STEPS, WebDemo

TINY = str(TEST_CONFIGS / 'glide_tiny_16-32.py')
TINY_INPAINT = str(TEST_CONFIGS / 'glide_tiny_16-32-inpaint.py')
PROMPT = 'a red cube'
#: prompt, negative prompt, batch, guidance, sampler, steps, seed, random
GOOD = (PROMPT, '', 2, 3.0, 'ddim', 2, 7, False)


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    return WebDemo(TINY, out_dir=str(tmp_path_factory.mktemp('web')))


@pytest.fixture(scope='module')
def inpaint_demo(tmp_path_factory):
    return WebDemo(TINY_INPAINT, out_dir=str(tmp_path_factory.mktemp('web')))


def with_(index, value):
    values = list(GOOD)
    values[index] = value
    return values


@pytest.mark.parametrize('values, message', [
    (with_(0, '   '), 'Prompt is empty'),
    (with_(2, 0), f'Batch size must be in [1, {MAX_BATCH}], got 0'),
    (with_(2, MAX_BATCH + 1), 'Batch size must be in'),
    (with_(2, 1.5), 'Batch size must be a whole number'),
    (with_(3, -1), 'Guidance scale must be in [0, 20.0], got -1'),
    (with_(3, float('nan')), 'Guidance scale must be in'),
    (with_(3, 'lots'), 'Guidance scale must be a number'),
    (with_(4, 'euler'), "Sampler 'euler' is not one of"),
    (with_(5, 0), f'Steps must be in [1, {MAX_STEPS}], got 0'),
    (with_(6, -3), f'Seed must be in [0, {MAX_SEED}], got -3'),
    (with_(6, None), 'Seed must be a number'),
])
def test_bad_values_give_a_readable_error_naming_the_field(
        demo, values, message):
    with pytest.raises(gr.Error, match=None) as err:
        demo.generate(*values, progress=None)
    assert message in err.value.message


def test_generate_saves_pngs_with_their_settings(demo):
    seen = []
    items, paths, seed, status = demo.generate(
        *GOOD, progress=lambda frac, **kw: seen.append(frac))
    assert seed == 7 and len(items) == len(paths) == 2
    assert status.startswith('2 images in') and 'seed 7' in status
    for i, path in enumerate(paths):
        assert os.path.dirname(path) == demo.out_dir
        image = Image.open(path)
        assert image.size == (32, 32)
        settings = json.loads(image.text['glide'])
        assert settings['prompt'] == PROMPT and settings['seed'] == 7
        assert settings['sampler'] == 'GlideDDIMScheduler'
        assert settings['num_steps'] == 2 and settings['index'] == i
    # Progress counts every step of both stages (2 base + the upsampler's).
    total = seen[-1][1]
    assert seen == [(done, total) for done in range(1, total + 1)]
    assert total > 2


def test_the_same_seed_gives_the_same_images_and_random_shows_its_seed(demo):
    first = demo.generate(*GOOD, progress=None)[1]
    again = demo.generate(*GOOD, progress=None)[1]
    for a, b in zip(first, again):
        assert (np.asarray(Image.open(a)) == np.asarray(Image.open(b))).all()
    _, paths, seed, status = demo.generate(*with_(7, True), progress=None)
    assert 0 <= seed <= MAX_SEED and f'seed {seed}' in status
    assert json.loads(Image.open(paths[0]).text['glide'])['seed'] == seed


def test_each_sampler_can_be_chosen(demo):
    for name, cls in (('ancestral', 'GlideAncestralScheduler'),
                      ('dpm++2m', 'GlideDPMSolverScheduler')):
        paths = demo.generate(*with_(4, name), progress=None)[1]
        settings = json.loads(Image.open(paths[0]).text['glide'])
        assert settings['sampler'] == cls


def test_stop_ends_sampling_at_the_next_step(demo):
    request = SimpleNamespace(session_hash='tab-1')
    other = SimpleNamespace(session_hash='tab-2')
    steps = []

    def progress(frac, **kw):
        steps.append(frac[0])
        if frac[0] == 2:
            assert demo.cancel(other) == 'Nothing is running.'
            assert demo.cancel(request).startswith('Stopped')

    items, paths, seed, status = demo.generate(
        *with_(5, 10), request=request, progress=progress)
    assert (items, paths) == ([], [])
    assert status.startswith('Stopped at step 2 of') and steps == [1, 2]
    # The stop was for that run only: the next one runs to the end.
    assert len(demo.generate(*GOOD, request=request, progress=None)[1]) == 2


def test_a_text_model_refuses_inpainting(demo):
    with pytest.raises(gr.Error, match=None) as err:
        demo.inpaint(None, *GOOD, progress=None)
    assert 'not an inpainting model' in err.value.message


def editor(size=(40, 40), painted=True):
    image = np.full(size + (3, ), 200, np.uint8)
    layer = np.zeros(size + (4, ), np.uint8)
    if painted:
        layer[:size[0] // 2, :, 3] = 255  # the top half
    return dict(background=image, layers=[layer], composite=image)


@pytest.mark.parametrize('value, message', [
    (None, 'No image to inpaint'),
    (dict(background=None, layers=[np.ones((8, 8, 4), np.uint8)]),
     'No image to inpaint'),
    (editor(size=(40, 30)), 'The image is 30x40: the model needs a square'),
    (editor(painted=False), 'Nothing is painted'),
])
def test_bad_inpainting_input_gives_a_readable_error(inpaint_demo, value,
                                                     message):
    with pytest.raises(gr.Error, match=None) as err:
        inpaint_demo.inpaint(value, *GOOD, progress=None)
    assert message in err.value.message


def test_the_painted_region_is_generated_and_the_rest_kept(inpaint_demo):
    init, mask = inpaint_demo.inpaint_inputs(editor())
    assert init.shape == (1, 3, 32, 32) and mask.shape == (1, 1, 32, 32)
    assert (mask[..., :16, :] == 0).all() and (mask[..., 16:, :] == 1).all()
    assert np.allclose(init.numpy(), 200 / 127.5 - 1, atol=1e-5)
    paths = inpaint_demo.inpaint(editor(), *GOOD, progress=None)[1]
    pixels = np.asarray(Image.open(paths[0]), dtype=np.int32)
    assert np.abs(pixels[16:] - 200).max() <= 1  # kept (8-bit rounding)
    assert np.abs(pixels[:16] - 200).max() > 10  # generated
    assert json.loads(Image.open(paths[0]).text['glide'])['inpainted']


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


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    """The default page (shipped shapes model) on a free local port."""
    port, out = free_port(), tmp_path_factory.mktemp('served')
    log = open(out / 'server.log', 'w')
    proc = subprocess.Popen(
        [sys.executable, 'tools/web_demo.py', '--port', str(port),
         '--out-dir', str(out)], cwd=ROOT, stdout=log,
        stderr=subprocess.STDOUT)
    url = f'http://127.0.0.1:{port}/'
    deadline = time.time() + 180
    while True:
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail('the web demo did not start:\n' +
                            (out / 'server.log').read_text())
            time.sleep(0.5)
    yield SimpleNamespace(url=url, out=out, proc=proc)
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


@pytest.fixture(scope='module')
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    chromium, driver = browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage',
                '--window-size=1280,900'):
        options.add_argument(arg)
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    yield chrome
    chrome.quit()


def open_page(browser, url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    browser.get(url)
    return WebDriverWait(browser, 60).until(
        lambda b: b.find_element(By.CSS_SELECTOR, '#prompt textarea'))


def type_prompt(box, text):
    from selenium.webdriver.common.keys import Keys
    box.send_keys(Keys.CONTROL, 'a')
    box.send_keys(Keys.BACKSPACE)
    if text:
        box.send_keys(text)


def wait_for_images(browser, count=4, timeout=180):
    """The gallery's images once ``count`` of them have loaded."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def loaded(b):
        images = [img for img in b.find_elements(By.CSS_SELECTOR,
                                                 '#gallery img')
                  if b.execute_script('return arguments[0].complete && '
                                      'arguments[0].naturalWidth > 0', img)]
        return images if len(images) >= count else False

    return WebDriverWait(browser, timeout).until(loaded)


def test_page_prompt_to_images_in_a_real_browser(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    box = open_page(browser, server.url)
    prompt = 'a large red circle in the top left corner, black background'
    type_prompt(box, prompt)
    browser.find_element(By.CSS_SELECTOR, '#generate').click()
    images = wait_for_images(browser)  # the default batch
    assert len(images) == 4
    status = WebDriverWait(browser, 30).until(
        lambda b: b.find_element(By.CSS_SELECTOR, '#status').text or False)
    assert status.startswith('4 images in') and 'seed 0' in status
    os.makedirs(os.path.join(ROOT, 'outputs'), exist_ok=True)
    browser.save_screenshot(os.path.join(ROOT, 'outputs', 'web_demo.png'))
    saved = sorted(server.out.glob('*.png'))
    assert len(saved) == 4
    assert json.loads(Image.open(saved[0]).text['glide'])['prompt'] == prompt

    # Bad input: a readable message in the page, and the server goes on.
    type_prompt(box, '')
    browser.find_element(By.CSS_SELECTOR, '#generate').click()
    toast = WebDriverWait(browser, 30).until(lambda b: [
        e.text for e in b.find_elements(By.CSS_SELECTOR, '.toast-text')
        if e.text] or False)
    assert toast[0].startswith('Prompt is empty')
    assert 'Traceback' not in browser.page_source
    assert server.proc.poll() is None


def test_two_tabs_sampling_at_once_each_get_their_own_images(server,
                                                             browser):
    from selenium.webdriver.common.by import By
    prompts = ['a small blue square in the bottom right corner, white '
               'background', 'a small green square in the bottom left '
               'corner, black background']
    before = set(server.out.glob('*.png'))
    tabs = []
    for prompt in prompts:
        browser.switch_to.new_window('tab')
        type_prompt(open_page(browser, server.url), prompt)
        tabs.append(browser.current_window_handle)
    for tab in tabs:  # both queued before either finishes
        browser.switch_to.window(tab)
        browser.find_element(By.CSS_SELECTOR, '#generate').click()
    for tab, prompt in zip(tabs, prompts):
        browser.switch_to.window(tab)
        captions = [img.get_attribute('src') for img in
                    wait_for_images(browser)]
        assert len(captions) == 4
        names = {os.path.basename(src.split('=')[-1]) for src in captions}
        mine = [p for p in set(server.out.glob('*.png')) - before
                if p.name in names]
        assert len(mine) == 4
        assert {json.loads(Image.open(p).text['glide'])['prompt']
                for p in mine} == {prompt}
