"""Measure guided distillation on the shapes models (docs/distillation.md):
caption accuracy, network passes and seconds per sample of the distilled
students against their teacher, all in one run.

    python tools/eval_distilled.py base [--work-dirs work_dirs]   # the chain
    python tools/eval_distilled.py base --shipped \
        checkpoints/glide_shapes-32-distilled.safetensors          # 4 steps
    python tools/eval_distilled.py upsampler --steps 4 6 8 10 15
    python tools/eval_distilled.py cascade --shipped CKPT
    python tools/eval_distilled.py curves       # each stage's curves, times

``base``: 64 held-out prompts x 4 (the README table's prompts and seeds) at
each guidance scale of ``--scales``: the teacher (the demo model,
DPM-Solver++ 25 with classifier-free guidance: two passes per step), the
teacher with as few passes as the students, and every student of
``tools/distill_shapes.sh`` (one pass per step; the 4-step student also at
2 and 1 steps, which it was not distilled for). ``upsampler``: the 32->64
upsampler's DDIM ``'fast27'`` against DPM-Solver++ and DDIM with fewer
steps, from the same base samples and noise: the judge at 64 px and the
RMS distance to the fast27 output (8-bit levels). ``cascade``: the whole
32->64 cascade, teacher against the distilled config
(``glide_distilled-4steps_shapes-32-64``).
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__),
                                                '..')))

from projects.glide.runtime import require_environment  # noqa: E402

require_environment('tools/eval_distilled.py')

CONFIGS = 'projects/glide/configs'
TEACHER_CONFIG = f'{CONFIGS}/glide_base-stage1_2xb16-4k_shapes-32x32.py'
CASCADE_CONFIG = f'{CONFIGS}/glide_upsampler_2xb16-1k_shapes-32-64.py'
DISTILLED_CONFIG = f'{CONFIGS}/glide_distilled-4steps_shapes-32-64.py'
TEACHER = 'checkpoints/glide_shapes-32.safetensors'
#: The chain's students: label, stage config, the steps each is run at.
STUDENTS = [
    ('stage 1 (w input)', 'glide_distill-guidance_1xb16-1k_shapes-32x32',
     (25, 8, 4)),
    ('13 steps', 'glide_distill-13steps_1xb16-1k_shapes-32x32', (13, )),
    ('7 steps', 'glide_distill-7steps_1xb16-1k_shapes-32x32', (7, )),
    ('4 steps', 'glide_distill-4steps_1xb16-1k_shapes-32x32', (4, 2, 1)),
]
#: The base table's model names (``--models``).
MODELS = ('teacher', 'stage', '13', '7', '4')
ATTRIBUTES = ('colour', 'shape', 'size', 'position', 'background')
HEADER = (['w', 'model', 'sampler', 'passes'] + list(ATTRIBUTES) +
          ['all five', 'worst gap', 's/sample', 'speed-up'])


def held_out(args):
    """The held-out captions, each repeated ``--per-prompt`` times."""
    from projects.glide.shapes import make_scenes
    prompts = [s['caption'] for s in make_scenes(args.prompts,
                                                 seed=args.prompt_seed)]
    return [p for p in prompts for _ in range(args.per_prompt)]


def timed_samples(model, rows, guidance, steps, seed, batch, **kwargs):
    """(samples, seconds per sample): ``rows`` sampled in batches from one
    seeded generator (the same noise for every model of one size)."""
    import torch
    gen = torch.Generator().manual_seed(seed)
    out, start = [], time.perf_counter()
    for i in range(0, len(rows), batch):
        out.append(model.infer(prompt=rows[i:i + batch],
                               guidance_scale=guidance,
                               num_inference_steps=steps, generator=gen,
                               **kwargs)['samples'])
    return torch.cat(out), (time.perf_counter() - start) / len(rows)


def judged(samples, rows):
    """The judge's accuracy per attribute and for all five."""
    from projects.glide.shapes import caption_accuracy
    return caption_accuracy(samples, rows)


def student_file(args, config):
    """A stage's published student (``--shipped`` for the 4-step one)."""
    if args.shipped and config == STUDENTS[-1][1]:
        return args.shipped
    return os.path.join(args.work_dirs, config, 'student.safetensors')


def base_rows(args):
    """Measure the selected models (``--models``) at every guidance scale:
    a list of row dicts (w, model, sampler, passes, accuracy, seconds),
    each also appended to ``--json`` as it is measured."""
    from projects.glide.api import build_model
    rows = held_out(args)
    models = []
    if 'teacher' in args.models:
        teacher = build_model(TEACHER_CONFIG, args.teacher)
        models.append(('teacher', teacher, [25] + args.teacher_steps))
    for label, config, steps in STUDENTS:
        if label.split()[0] in args.models:
            models.append((label, build_model(
                f'{CONFIGS}/{config}.py', student_file(args, config)),
                list(steps)))
    out = []
    for w in args.scales:
        for label, model, step_list in models:
            name = type(model.diffusion_scheduler).__name__
            name = 'DDIM' if 'DDIM' in name else 'DPM-Solver++'
            distilled = model.unet.guidance_embedding is not None
            per_step = 1 if distilled or w == 1 else 2
            for steps in step_list:
                samples, sec = timed_samples(model, rows, w, steps,
                                             args.seed, args.batch)
                acc = judged(samples, rows)
                out.append(dict(w=w, model=label, sampler=f'{name} {steps}',
                                passes=steps * per_step, seconds=sec,
                                samples=len(rows), threads=_threads(),
                                **{k: acc[k] for k in (*ATTRIBUTES, 'all')}))
                print(json.dumps(out[-1]), flush=True)
                if args.json:
                    with open(args.json[0], 'a') as f:
                        f.write(json.dumps(out[-1]) + '\n')
    return out


def _threads():
    import torch
    return torch.get_num_threads()


def base_report(measured, speed=None):
    """The accuracy/passes/speed table: each row's worst attribute gap to
    the teacher's DPM-Solver++ 25 row at the same w, and its speed-up
    against that row. ``speed``: rows of another run whose seconds replace
    the measured ones (all timings then from that one run)."""
    def key(r):
        return (r['w'], r['model'], r['sampler'])

    seconds = {key(r): r['seconds'] for r in (speed or measured)}
    header = (['w', 'model', 'sampler', 'passes'] + list(ATTRIBUTES) +
              ['all five', 'worst gap', 's/sample', 'speed-up'])
    table = []
    for r in measured:
        ref = next((t for t in measured if t['w'] == r['w'] and
                    t['model'] == 'teacher' and
                    t['sampler'].endswith(' 25')), None)
        gap = None if ref in (None, r) else min(r[k] - ref[k]
                                                for k in ATTRIBUTES)
        sec = seconds.get(key(r))
        ref_sec = None if ref is None else seconds.get(key(ref))
        table.append(
            [f"{r['w']:g}", r['model'], r['sampler'], str(r['passes'])] +
            [f'{r[k]:.2f}' for k in (*ATTRIBUTES, 'all')] +
            ['-' if gap is None else f'{gap:+.2f}',
             '-' if sec is None else f'{sec:.4f}',
             '-' if sec is None or ref_sec is None else
             f'{ref_sec / sec:.1f}x'])
    return header, table


def read_rows(paths):
    rows = []
    for path in paths or []:
        with open(path) as f:
            rows += [json.loads(line) for line in f if line.strip()]
    return rows


def upsampler_scheduler(kind, steps):
    """The shapes upsampler's scheduler with another sampler or steps."""
    from projects.glide.models.base_scheduler import build_scheduler
    return build_scheduler(dict(
        type=kind, beta_schedule='linear', variance_type='learned_range',
        timestep_respacing=str(steps), prediction_type='v'))


def upsample(model, low_res, prompts, latents_up, batch, steps=None):
    """The cascade's upsampler stage alone on given base samples (``steps``:
    ``num_inference_steps_up``): what ``infer`` runs after the base stage,
    here without re-sampling the base."""
    import torch
    from projects.glide.models.sampling import quantize_8bit
    out = []
    for i in range(0, len(prompts), batch):
        a = model.check_inputs(prompt=prompts[i:i + batch],
                               latents_up=latents_up[i:i + batch],
                               num_inference_steps_up=steps)
        model.diffusion_scheduler_up.set_timesteps(a.steps_up)
        with torch.no_grad():  # as infer's
            out.append(model._sample_stage(
                'upsample', a, a.latents_up * a.upsample_temp,
                lambda *_: None, quantize_8bit(low_res[i:i + batch])))
    return torch.cat(out).float().clamp(-1, 1)


def upsampler_table(args):
    """The upsampler's samplers against its fast27 DDIM, from the same base
    samples (the teacher's, guidance 3) and upsampler noise."""
    import torch
    from projects.glide.api import build_model
    rows = held_out(args)
    model = build_model(CASCADE_CONFIG, args.teacher)
    gen = torch.Generator().manual_seed(args.seed)
    latents_up = torch.randn(len(rows), 3, 64, 64, generator=gen)
    unet_up, model.unet_up = model.unet_up, None  # the base stage alone
    low_res, base_sec = timed_samples(model, rows, 3.0, None, args.seed,
                                      args.batch)
    model.unet_up = unet_up
    settings = [('GlideDDIMScheduler', 'fast27')]
    settings += [('GlideDPMSolverScheduler', s) for s in args.steps]
    settings += [('GlideDDIMScheduler', s) for s in args.ddim_steps]
    header = ['upsampler', 'passes'] + list(ATTRIBUTES) + [
        'all five', 'RMS to fast27 (levels)', 's/sample', 'base s/sample']
    table, reference = [], None
    for kind, steps in settings:
        model.diffusion_scheduler_up = upsampler_scheduler(kind, steps)
        start = time.perf_counter()
        samples = upsample(model, low_res, rows, latents_up, args.batch)
        seconds = (time.perf_counter() - start) / len(rows)
        acc = judged(samples, rows)
        levels = (samples + 1) * 127.5
        reference = levels if reference is None else reference
        rms = ((levels - reference)**2).mean().sqrt().item()
        name = 'DDIM' if 'DDIM' in kind else 'DPM-Solver++'
        table.append([f'{name} {steps}',
                      str(len(model.diffusion_scheduler_up.timesteps))] +
                     [f'{acc[k]:.2f}' for k in (*ATTRIBUTES, 'all')] +
                     [f'{rms:.2f}', f'{seconds:.4f}', f'{base_sec:.4f}'])
        print(', '.join(f'{h}: {c}' for h, c in zip(header, table[-1])),
              flush=True)
    return header, table


def cascade_table(args):
    """The 32->64 cascade: the teacher's against the distilled config's
    defaults (both judged at 64 px), at guidance 3."""
    from projects.glide.api import build_model
    rows = held_out(args)
    teacher = build_model(CASCADE_CONFIG, args.teacher)
    student = build_model(DISTILLED_CONFIG, args.shipped)
    header = ['cascade', 'passes'] + list(ATTRIBUTES) + [
        'all five', 'worst gap', 's/sample', 'speed-up']
    results = []
    for label, model in (('teacher', teacher), ('distilled', student)):
        samples, sec = timed_samples(model, rows, args.guidance, None,
                                     args.seed, args.batch)
        base = len(model.diffusion_scheduler.timesteps)
        guided = getattr(model.unet, 'guidance_embedding', None) is None
        passes = base * (2 if guided else 1) + len(
            model.diffusion_scheduler_up.timesteps)
        results.append((label, passes, judged(samples, rows), sec))
    ref = results[0]
    table = []
    for label, passes, acc, sec in results:
        gap = min(acc[k] - ref[2][k] for k in ATTRIBUTES)
        table.append([label, str(passes)] +
                     [f'{acc[k]:.2f}' for k in (*ATTRIBUTES, 'all')] +
                     [f'{gap:+.2f}', f'{sec:.4f}', f'{ref[3] / sec:.1f}x'])
    return header, table


def stage_runs(work_dirs):
    """Each chain stage's logged scalars (every run of it merged by
    iteration, a resumed one included) and wall time (its first run's
    start to its last checkpoint)."""
    import datetime
    import glob
    stages = []
    for label, config, _ in STUDENTS:
        work = os.path.join(work_dirs, config)
        runs = sorted(glob.glob(os.path.join(work, '2*', 'vis_data',
                                             'scalars.json')))
        if not runs:
            continue
        by_iter, step = {}, 0
        for path in runs:
            for rec in read_rows([path]):
                # a validation record's 'step' is the val loop's: it
                # belongs to the training iteration logged before it
                step = rec['step'] if 'loss' in rec else step
                by_iter.setdefault(step, {}).update(
                    {k: v for k, v in rec.items() if k != 'step'})
                by_iter[step]['step'] = step
        start = datetime.datetime.strptime(
            os.path.basename(os.path.dirname(os.path.dirname(runs[0]))),
            '%Y%m%d_%H%M%S').timestamp()
        ckpts = glob.glob(os.path.join(work, 'iter_*.pth'))
        end = max(os.path.getmtime(c) for c in ckpts) if ckpts else start
        stages.append((label, [by_iter[k] for k in sorted(by_iter)],
                       (end - start) / 60))
    return stages


def curves(args):
    """The chain's loss and validation curves (one panel per stage) and
    its per-stage table: wall minutes, last loss, validation accuracy."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    stages = stage_runs(args.work_dirs)
    fig, axes = plt.subplots(1, len(stages), figsize=(4 * len(stages), 3),
                             squeeze=False)
    header = ['stage', 'minutes', 'loss (first / last logged)',
              'val shape (500 / 1000)', 'val all five (500 / 1000)']
    table = []
    for ax, (label, recs, minutes) in zip(axes[0], stages):
        train = [r for r in recs if 'loss' in r]
        val = [r for r in recs if 'glide/acc_all' in r]
        ax.plot([r['step'] for r in train], [r['loss'] for r in train],
                label='loss (50-step mean)')
        ax.set_title(label)
        ax.set_xlabel('iteration')
        ax.set_yscale('log')
        twin = ax.twinx()
        twin.plot([r['step'] for r in val],
                  [r['glide/acc_all'] for r in val], 'o-', color='C1',
                  label='judge: all five')
        twin.set_ylim(0, 1.05)
        table.append([label, f'{minutes:.1f}',
                      f"{train[0]['loss']:.3f} / {train[-1]['loss']:.3f}",
                      ' / '.join(f"{r['glide/acc_shape']:.2f}" for r in val),
                      ' / '.join(f"{r['glide/acc_all']:.2f}" for r in val)])
    axes[0][0].legend(loc='upper left', fontsize=7)
    fig.tight_layout()
    os.makedirs(args.figures, exist_ok=True)
    path = os.path.join(args.figures, 'distillation_curves.png')
    fig.savefig(path, dpi=90)
    print(f'wrote {path}')
    return header, table


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('table', choices=('base', 'report', 'upsampler',
                                     'cascade', 'curves'))
    p.add_argument('--teacher', default=TEACHER,
                   help='the teachers\' weights (default: %(default)s)')
    p.add_argument('--work-dirs', default='work_dirs',
                   help='where tools/distill_shapes.sh left the students')
    p.add_argument('--shipped', help='a published 4-step student (base: '
                   'the 4-step row\'s weights; cascade: the distilled '
                   'config\'s)')
    p.add_argument('--models', nargs='+', default=list(MODELS),
                   choices=MODELS, help='base: the rows to measure')
    p.add_argument('--scales', type=float, nargs='+', default=[1.0, 3.0, 5.0],
                   help='guidance scales w of the base table')
    p.add_argument('--guidance', type=float, default=3.0,
                   help='the cascade table\'s guidance scale')
    p.add_argument('--teacher-steps', type=int, nargs='*', default=[4, 2],
                   help='the teacher\'s fewer-step rows (DPM-Solver++)')
    p.add_argument('--steps', type=int, nargs='*', default=[4, 6, 8, 10, 15],
                   help='upsampler DPM-Solver++ steps')
    p.add_argument('--ddim-steps', type=int, nargs='*', default=[8],
                   help='upsampler DDIM steps')
    p.add_argument('--json', nargs='*', default=[],
                   help='base: append each row here; report: the rows')
    p.add_argument('--speed', help='report: the rows whose seconds to use '
                   '(a base run of every model, for timings from one run)')
    p.add_argument('--prompts', type=int, default=64)
    p.add_argument('--per-prompt', type=int, default=4)
    p.add_argument('--prompt-seed', type=int, default=12345)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--batch', type=int, default=128)
    p.add_argument('--figures', default='docs/figures',
                   help='curves: where distillation_curves.png goes')
    p.add_argument('--out', help='append the table (markdown) to this file')
    args = p.parse_args(argv)
    if args.table == 'cascade' and not args.shipped:
        p.error('cascade needs --shipped (the distilled cascade weights)')
    if args.table == 'base' and len(args.json) > 1:
        p.error('base appends its rows to one --json file')
    if args.table == 'base':
        measured = base_rows(args)  # appended to --json as measured
        header, table = base_report(read_rows(args.json) if args.json
                                    else measured)
    elif args.table == 'report':
        header, table = base_report(read_rows(args.json),
                                    read_rows([args.speed]) if args.speed
                                    else None)
    elif args.table == 'upsampler':
        header, table = upsampler_table(args)
    elif args.table == 'curves':
        header, table = curves(args)
    else:
        header, table = cascade_table(args)
    from tools.eval_shapes import table as markdown
    text = markdown(header, table)
    print(text)
    if args.out:
        with open(args.out, 'a') as f:
            f.write(text + '\n\n')


if __name__ == '__main__':
    main()
