"""tools/eval_distilled.py: the distillation tables (accuracy, passes,
seconds) of the shapes students against their teacher."""
import json

import torch

from tests.conftest import ROOT
from tools import eval_distilled as tool

DISTILLED = ROOT / 'checkpoints' / 'glide_shapes-32-distilled.safetensors'


def _row(w, model, sampler, passes, seconds, **acc):
    scores = dict(colour=1.0, shape=1.0, size=1.0, position=1.0,
                  background=1.0, all=1.0)
    scores.update(acc)
    return dict(w=w, model=model, sampler=sampler, passes=passes,
                seconds=seconds, **scores)


def test_report_gives_each_row_its_worst_gap_and_speed_up():
    """Gaps and speed-ups against the teacher's DPM-Solver++ 25 row of the
    same w; ``speed`` rows (another run) replace the seconds."""
    rows = [_row(3, 'teacher', 'DPM-Solver++ 25', 50, 2.0),
            _row(3, '4 steps', 'DDIM 4', 4, 0.1, shape=0.9, colour=0.95),
            _row(1, '4 steps', 'DDIM 4', 4, 0.1)]
    header, table = tool.base_report(rows)
    cells = [dict(zip(header, r)) for r in table]
    assert cells[0]['worst gap'] == '-' and cells[0]['speed-up'] == '1.0x'
    assert cells[1]['worst gap'] == '-0.10'
    assert cells[1]['speed-up'] == '20.0x'
    assert cells[2]['worst gap'] == '-' and cells[2]['speed-up'] == '-'
    speed = [_row(3, 'teacher', 'DPM-Solver++ 25', 50, 3.0),
             _row(3, '4 steps', 'DDIM 4', 4, 0.25)]
    _, table = tool.base_report(rows, speed)
    assert dict(zip(header, table[1]))['speed-up'] == '12.0x'
    assert dict(zip(header, table[1]))['s/sample'] == '0.2500'


def test_the_upsampler_alone_is_the_cascades_upsampler():
    """``upsample`` (the table's upsampler on fixed base samples) gives what
    ``infer`` gives after its base stage, from the same noise."""
    from projects.glide.api import build_model
    model = build_model(tool.CASCADE_CONFIG, tool.TEACHER)
    prompts = ['a small red circle at the top left on white'] * 2
    gen = torch.Generator().manual_seed(0)
    latents = torch.randn(2, 3, 32, 32, generator=gen)
    latents_up = torch.randn(2, 3, 64, 64, generator=gen)
    out = model.infer(prompt=prompts, latents=latents, latents_up=latents_up,
                      num_inference_steps=4, num_inference_steps_up=4,
                      return_low_res=True)
    alone = tool.upsample(model, out['low_res'], prompts, latents_up, 1,
                          steps=4)
    torch.testing.assert_close(alone, out['samples'], rtol=0, atol=1e-5)


def test_base_rows_of_the_shipped_student(tmp_path, capsys):
    """The 4-step row at 4, 2 and 1 steps: one pass per step, appended to
    the JSON file as measured, printed as a table."""
    out = tmp_path / 'rows.json'
    tool.main(['base', '--models', '4', '--shipped', str(DISTILLED),
               '--prompts', '2', '--per-prompt', '1', '--scales', '3',
               '--json', str(out)])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r['sampler'], r['passes']) for r in rows] == [
        ('DDIM 4', 4), ('DDIM 2', 2), ('DDIM 1', 1)]
    assert all(r['model'] == '4 steps' and r['samples'] == 2 for r in rows)
    printed = capsys.readouterr().out
    assert '| 4 steps' in printed and '| DDIM 1 ' in printed
