"""tools/web_demo.py served on 127.0.0.1 and driven through gradio_client
(tools/web_load_test.py): concurrent clients each get their own images, a
full queue says "busy, try again", Stop stops only its own request, memory
stays bounded, and the page serves no file but its images."""
import json
import os
import time
import urllib.error
import urllib.request

import pytest
from PIL import Image

from tests.conftest import ROOT
from tools import web_load_test as load

MAX_QUEUE = 3
#: The server's memory may grow this much over the 12 requests after the
#: warm-up (MiB): a leak of more than about 5 MiB a request exceeds it
#: (tools/web_load_test.py measured +20 MiB over 144 requests).
RSS_GROWTH_MIB = 64


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    """tools/web_demo.py with the tiny model (1 upsampler step) and a queue
    of MAX_QUEUE, in its own process (its VmRSS is the server's alone)."""
    folder = tmp_path_factory.mktemp('web-load')
    config = load.fast_config(load.TINY, str(folder))
    server = load.start_server(str(folder / 'out'), config, '--max-queue',
                               str(MAX_QUEUE))
    server.outside = server.log  # a file beside the served folder
    yield server
    load.stop_server(server)


def test_concurrent_clients_each_get_their_own_images(server):
    figures = load.load_test(server, clients=12, requests=1, steps=1)
    print(f'\n{load.table(figures)}')
    assert figures['errors'] == [] and figures['wrong'] == []
    assert figures['accepted'] == 12
    assert set(figures['busy_messages']) <= {load.BUSY}
    growth = figures['rss_after_mib'] - figures['rss_warm_mib']
    assert growth < RSS_GROWTH_MIB, figures


def wait_for(condition, what, timeout=90):
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            pytest.fail(f'timed out waiting for {what}')
        time.sleep(0.1)


def test_stop_stops_only_its_own_request_and_a_full_queue_says_busy(
        server):
    from gradio_client.utils import QueueError
    sessions = [load.client(server.url) for _ in range(MAX_QUEUE + 3)]
    runner, other, *waiting = sessions
    # 1000 steps of 8 images: minutes, unless stopped.
    long = runner.submit(*load.fields('the long one', 1, steps=1000,
                                      batch=8), api_name='/generate')
    wait_for(lambda: long.outputs(), 'the long request to start')
    # Another session's Stop does not stop it.
    assert load.stop(server.url, other) == 'Nothing is running.'
    assert not long.done()
    queued = [s.submit(*load.fields(f'queued {i}', 10 + i), api_name=
                       '/generate') for i, s in enumerate(waiting[:-1])]
    wait_for(lambda: all(j.status().code.name == 'IN_QUEUE' for j in queued),
             'the requests to queue')
    busy = waiting[-1].submit(*load.fields('one too many', 99),
                              api_name='/generate')
    with pytest.raises(QueueError, match='Queue is full! Please try again'):
        busy.result(timeout=60)
    # Its own Stop stops it; the queued requests then run, each to its own
    # images.
    assert load.stop(server.url, runner) == 'Stopped: no images were made.'
    for i, job in enumerate(queued):
        gallery = job.result(timeout=120)[0]
        settings = json.loads(Image.open(gallery[0]['image']['path']).text[
            'glide'])
        assert (settings['prompt'], settings['seed']) == (f'queued {i}',
                                                          10 + i)
    wait_for(long.done, 'the stopped request to end')
    prompts = {json.loads(Image.open(os.path.join(server.out, name)).text[
        'glide'])['prompt'] for name in os.listdir(server.out)}
    assert 'the long one' not in prompts and 'one too many' not in prompts


def get(server, path):
    """The status of a GET of ``path`` on the page."""
    try:
        with urllib.request.urlopen(server.url + path, timeout=30) as reply:
            return reply.status
    except urllib.error.HTTPError as err:
        return err.code


def test_the_page_serves_its_images_and_no_other_file(server):
    made = load.request(load.client(server.url), 'served', 5, steps=1)
    image = os.path.join(server.out, os.path.basename(made['files'][0]))
    assert get(server, f'gradio_api/file={image}') == 200
    for path in ('/etc/passwd', os.path.join(ROOT, 'README.md'),
                 os.path.join(ROOT, 'tools', 'web_demo.py'), server.outside,
                 f'{server.out}/../{os.path.basename(server.outside)}',
                 f'{server.out}/../../../../etc/passwd'):
        assert get(server, f'gradio_api/file={path}') in (403, 404), path
    assert get(server, 'file=/etc/passwd') in (403, 404)
