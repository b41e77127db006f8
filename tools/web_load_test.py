"""A bounded load test of the web page (tools/web_demo.py) on 127.0.0.1,
through ``gradio_client`` as other programs would use it.

It serves the page (a config, by default the tiny test model) on a free
local port with a short queue, then:

1. warm-up: a few requests; the server's memory (VmRSS) is read;
2. load: ``--clients`` threads, each with its own client (session), send
   ``--requests`` text-to-image requests each, all at once; a request the
   full queue refuses ("Queue is full! Please try again.") is counted and
   sent again after 0.2 s;
3. every accepted request's images are checked to be its own (its prompt
   and seed in the PNG metadata, file names no other request got);
4. the server's memory is read again.

It prints the figures (requests, accepted, rejected with the message,
latency p50/p95, memory) as a Markdown table. Example::

    python tools/web_load_test.py --clients 12 --requests 25
"""
import argparse
import os
import socket
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
TINY = os.path.join(ROOT, 'tests', 'configs', 'glide_tiny_16-32.py')
#: What gradio_client raises for a request the full queue refuses.
BUSY = 'Queue is full! Please try again.'


def free_port():
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def fast_config(config, folder, steps_up=1):
    """A config file in ``folder``: ``config`` with ``steps_up`` upsampler
    steps (a request is then a few network passes)."""
    path = os.path.join(folder, f'fast_{os.path.basename(config)}')
    with open(path, 'w') as out:
        out.write(f'_base_ = {os.path.abspath(config)!r}\nmodel = dict('
                  f'test_cfg=dict(num_inference_steps_up={steps_up}))\n')
    return path


def start_server(out_dir, *args, timeout=300):
    """tools/web_demo.py with ``args`` on a free local port, its log in
    ``<out_dir>.log`` (outside the folder the page serves); returns once it
    answers.

    Returns:
        SimpleNamespace: ``url``, ``proc``, ``out`` (the images' folder),
        ``log`` (the log's path).

    Raises:
        RuntimeError: The server exited or did not answer in ``timeout``
            seconds (with its log).
    """
    port = free_port()
    os.makedirs(out_dir, exist_ok=True)
    log = out_dir.rstrip(os.sep) + '.log'
    with open(log, 'w') as stream:
        proc = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, 'tools', 'web_demo.py'),
             *args, '--port', str(port), '--out-dir', out_dir],
            cwd=ROOT, stdout=stream, stderr=subprocess.STDOUT)
    deadline = time.time() + timeout
    while True:
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                with open(log) as stream:
                    raise RuntimeError('the web demo did not start:\n' +
                                       stream.read()) from None
            time.sleep(0.3)
    return SimpleNamespace(url=f'http://127.0.0.1:{port}/', proc=proc,
                           pid=proc.pid, out=out_dir, log=log)


def stop_server(server):
    server.proc.terminate()
    server.proc.wait(timeout=30)


def rss_mib(pid):
    """A process's resident memory (VmRSS of /proc/PID/status), MiB."""
    with open(f'/proc/{pid}/status') as status:
        for line in status:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f'no VmRSS in /proc/{pid}/status')


def client(url):
    """A gradio_client session of the page."""
    from gradio_client import Client
    return Client(url, verbose=False, download_files=False)


def stop(url, session, tab='generate'):
    """Press a tab's Stop for a gradio_client session; returns the status
    line it answers.

    The page's Stop runs outside the queue (as the browser sends it): a
    full queue does not hold it up. ``gradio_client`` would send it
    through the queue, so it is posted directly, with the session's id.
    """
    import httpx
    reply = httpx.post(f'{url}gradio_api/run/stop_{tab}', timeout=30,
                       json=dict(data=[], session_hash=session.session_hash))
    reply.raise_for_status()
    return reply.json()['data'][0]


def fields(prompt, seed, steps=2, batch=1):
    """The Text to image tab's fields (the worker's order)."""
    return (prompt, '', batch, 3.0, 'ddim', steps, seed, False)


def request(session, prompt, seed, steps=2, timeout=120):
    """One request, sent again while the queue is full.

    Returns:
        dict: ``prompt``, ``seed``, ``seconds`` (from the accepted send),
        ``files`` (the server's PNG paths), ``busy`` (the refusals'
        messages), ``error`` (any other failure, else None).
    """
    from gradio_client.utils import QueueError
    result = dict(prompt=prompt, seed=seed, busy=[], files=[], error=None)
    while True:
        start = time.perf_counter()
        try:
            job = session.submit(*fields(prompt, seed, steps),
                                 api_name='/generate')
            gallery, _files, _seed, _status = job.result(timeout=timeout)
        except QueueError as err:
            result['busy'].append(str(err))
            time.sleep(0.2)
            continue
        except Exception as err:  # reported, not raised: the figures
            result['error'] = f'{type(err).__name__}: {err}'
            return result
        result['seconds'] = time.perf_counter() - start
        result['files'] = [item['image']['path'] for item in gallery]
        return result


def run_load(sessions, requests=10, steps=2, name='load'):
    """Each session sends ``requests`` requests, all sessions at once.

    Returns:
        list[dict]: Each request's :func:`request` result.
    """
    results, lock = [], threading.Lock()
    start = threading.Barrier(len(sessions))

    def work(index, session):
        start.wait()
        for i in range(requests):
            out = request(session, f'{name} client {index} request {i}',
                          index * 1000 + i, steps)
            with lock:
                results.append(out)

    threads = [threading.Thread(target=work, args=(i, s))
               for i, s in enumerate(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def wrong_images(results):
    """The accepted requests whose images are not their own: a file without
    the request's prompt and seed in its metadata, or a file name another
    request got too. Returns a list of lines ([] when none)."""
    import json

    from PIL import Image
    wrong, seen = [], {}
    for r in results:
        if r['error'] is not None:
            continue
        if len(r['files']) != 1:
            wrong.append(f'{r["prompt"]}: {len(r["files"])} images')
        for path in r['files']:
            name = os.path.basename(path)
            if name in seen:
                wrong.append(f'{name}: for {r["prompt"]} and {seen[name]}')
            seen[name] = r['prompt']
            settings = json.loads(Image.open(path).text['glide'])
            if (settings['prompt'], settings['seed']) != (r['prompt'],
                                                          r['seed']):
                wrong.append(f'{name}: {settings["prompt"]!r} seed '
                             f'{settings["seed"]}, not {r["prompt"]!r} '
                             f'seed {r["seed"]}')
    return wrong


def percentile(values, q):
    """The ``q`` quantile (0 to 1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(results, rss_before, rss_after, clients):
    """The figures of a run, as a dict."""
    accepted = [r for r in results if r['error'] is None]
    seconds = [r['seconds'] for r in accepted]
    busy = [m for r in results for m in r['busy']]
    return dict(clients=clients, requests=len(results) + len(busy),
                accepted=len(accepted), rejected_busy=len(busy),
                busy_messages=sorted(set(busy)),
                errors=[r['error'] for r in results if r['error']],
                p50_s=percentile(seconds, 0.5) if seconds else None,
                p95_s=percentile(seconds, 0.95) if seconds else None,
                rss_warm_mib=rss_before, rss_after_mib=rss_after)


def load_test(server, clients, requests, steps=2):
    """Warm-up (each client sends one request, all at once), then the load,
    and the figures of a served page (:func:`summary`, with ``wrong``:
    :func:`wrong_images`)."""
    sessions = [client(server.url) for _ in range(clients)]
    run_load(sessions, 1, steps, name='warm-up')
    before = rss_mib(server.pid)
    results = run_load(sessions, requests, steps)
    figures = summary(results, before, rss_mib(server.pid), clients)
    figures['wrong'] = wrong_images(results)
    return figures


def table(figures):
    """The figures as Markdown rows."""
    rows = [('clients', figures['clients']),
            ('requests sent (with re-sends after "busy")',
             figures['requests']),
            ('accepted, each with its own image', figures['accepted']),
            ('refused with "busy, try again"', figures['rejected_busy']),
            ('other errors', len(figures['errors'])),
            ('images not their own', len(figures['wrong'])),
            ('latency p50 / p95 (s, queue wait included)',
             f'{figures["p50_s"]:.2f} / {figures["p95_s"]:.2f}'),
            ('server VmRSS after warm-up / after the run (MiB)',
             f'{figures["rss_warm_mib"]:.0f} / '
             f'{figures["rss_after_mib"]:.0f}')]
    return '\n'.join(['| what | figure |', '| --- | --- |'] +
                     [f'| {what} | {value} |' for what, value in rows])


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', default=TINY,
                   help='model config (default: the tiny test model)')
    p.add_argument('--clients', type=int, default=12)
    p.add_argument('--requests', type=int, default=25,
                   help='requests per client (default 25)')
    p.add_argument('--steps', type=int, default=2)
    p.add_argument('--max-queue', type=int, default=4)
    p.add_argument('--out-dir', default='outputs/web_load_test')
    args = p.parse_args(argv)
    out_dir = os.path.abspath(args.out_dir)
    os.makedirs(out_dir + '.config', exist_ok=True)
    server = start_server(
        out_dir, fast_config(args.config, out_dir + '.config'),
        '--max-queue', str(args.max_queue))
    try:
        figures = load_test(server, args.clients, args.requests, args.steps)
    finally:
        stop_server(server)
    print(table(figures))
    for line in figures['errors'] + figures['wrong']:
        print('problem:', line)
    return 1 if figures['errors'] or figures['wrong'] else 0


if __name__ == '__main__':
    sys.exit(main())
