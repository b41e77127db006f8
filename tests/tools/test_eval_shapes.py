"""tools/eval_shapes.py produces its tables (random small model, few steps)."""
from mmagic.apis import init_model
from projects.glide.models.checkpoint import save_state_dict
from tests.conftest import CONFIGS
from tools.eval_shapes import main

CONFIG = str(CONFIGS / 'glide_base-stage1_2xb16-4k_shapes-32x32.py')


def rows_of(text):
    """The cells of each row of the markdown tables in ``text``."""
    return [[c.strip() for c in line.strip()[1:-1].split('|')]
            for line in text.splitlines()
            if line.startswith('| ')]


def test_guidance_and_sampler_tables(tmp_path, capsys):
    model = init_model(CONFIG, None, device='cpu')
    ckpt = str(tmp_path / 'shapes.safetensors')
    save_state_dict(model.state_dict(), ckpt)
    common = ['--config', CONFIG, '--checkpoint', ckpt, '--prompts', '2',
              '--per-prompt', '2', '--steps', '2']
    text = main(common + ['--scales', '1', '3', '--out',
                          str(tmp_path / 't.md')])
    rows = rows_of(text)
    assert rows[0][:2] == ['guidance', 'acc colour']
    assert [row[0] for row in rows[1:]] == ['1.0', '3.0']
    assert (tmp_path / 't.md').read_text().startswith('Classifier-free')
    # each finished row is printed as 'column: value' pairs, not a list
    out = capsys.readouterr().out
    assert '\nguidance: 1.0, acc colour: ' in '\n' + out
    assert "['" not in out
    text = main(common + ['--precision'])
    assert 'PSNR' in text and 'bfloat16' in [r[0] for r in rows_of(text)]


def test_tables_are_aligned():
    """Every line of a table is as wide as its header, cells padded."""
    from tools.eval_shapes import table
    text = table(['guidance', 'acc all'], [['1.0', '0.25'], ['10.0', '1']])
    assert text.splitlines() == [
        '| guidance | acc all |', '|----------|---------|',
        '| 1.0      | 0.25    |', '| 10.0     | 1       |']


def test_a_sampler_row_keeps_the_configs_prediction_type(tmp_path):
    """The sampler table swaps only the sampler's type: a v-predicting
    model stays v-predicting (and its min_snr_floor stays valid)."""
    from projects.glide.api import SAMPLERS
    from tools.eval_shapes import load
    model = init_model(CONFIG, None, device='cpu')
    ckpt = str(tmp_path / 'shapes.safetensors')
    save_state_dict(model.state_dict(), ckpt)
    for sampler in ('ancestral', 'ddim'):
        scheduler = load(CONFIG, ckpt, sampler).diffusion_scheduler
        assert type(scheduler).__name__ == SAMPLERS[sampler]
        assert scheduler.prediction_type == 'v'


def test_inpaint_task_erases_the_shapes_quadrant_and_asks_for_another():
    """Each held-out scene loses the quadrant its shape is in (mask 0
    there, 1 elsewhere) and its caption asks for the next shape in the next
    colour, the rest of the caption kept."""
    import torch
    from projects.glide.shapes import judge_image, make_scenes
    from tools.eval_shapes import inpaint_task
    images, masks, captions = inpaint_task(6, 12345, 32)
    assert images.shape == (6, 3, 32, 32) and masks.shape == (6, 1, 32, 32)
    assert images.min() >= -1 and images.max() <= 1
    for scene, image, mask, caption in zip(
            make_scenes(6, seed=12345), images, masks, captions):
        old = scene['attributes']
        assert judge_image(image)['position'] == old['position']
        assert mask.mean().item() == 0.75
        # the erased quadrant is the one the judge reads the shape in
        erased = (mask[0] == 0).nonzero().float().mean(0)
        assert ('bottom' in old['position']) == (erased[0] > 16)
        assert ('right' in old['position']) == (erased[1] > 16)
        assert old['shape'] not in caption and old['colour'] not in caption
        assert old['background'] in caption and old['size'] in caption
    assert torch.equal(inpaint_task(6, 12345, 32)[0], images)


def test_inpaint_table(tmp_path):
    """Both rows (the base checkpoint through init_from_base, the fine-tuned
    one) are sampled with the known region kept."""
    inpaint_config = str(CONFIGS / 'glide_inpaint_2xb16-1500_shapes-32x32.py')
    base = str(tmp_path / 'base.safetensors')
    save_state_dict(init_model(CONFIG, None, device='cpu').state_dict(), base)
    from mmengine import Config
    cfg = Config.fromfile(inpaint_config)
    cfg.load_from = None
    tuned = str(tmp_path / 'inpaint.safetensors')
    save_state_dict(init_model(cfg, None, device='cpu').state_dict(), tuned)
    text = main(['--inpaint', '--config', inpaint_config, '--checkpoint',
                 tuned, '--baseline', base, '--prompts', '2', '--per-prompt',
                 '2', '--steps', '2', '--grid', str(tmp_path / 'grid.png')])
    from PIL import Image
    # 2 scenes x (scene, input, 2 samples) of 32 px, 2 px padding, zoom 4
    assert Image.open(tmp_path / 'grid.png').size == (4 * (4 * 34 + 2),
                                                      4 * (2 * 34 + 2))
    rows = rows_of(text)
    assert rows[0][:2] == ['model', 'acc colour']
    assert [row[0] for row in rows[1:]] == ['base + paste-back', 'fine-tuned']
    for row in rows[1:]:
        known = float(row[-2])
        assert known <= 1.0, row  # 8-bit levels: the known region is kept


def test_clip_table_rows(tmp_path):
    """Classifier-free rows, CLIP rows on the conditional model
    (guidance_scale 1) and on the unconditional one (0), combined rows, in
    that order; a config without a CLIP guide is refused."""
    import pytest
    clip_config = str(CONFIGS / 'glide_noised-clip_1xb64-2k_shapes-32x32.py')
    ckpt = str(tmp_path / 'clip.safetensors')
    save_state_dict(init_model(clip_config, None, device='cpu').state_dict(),
                    ckpt)
    text = main(['--clip', '--config', clip_config, '--checkpoint', ckpt,
                 '--prompts', '2', '--per-prompt', '1', '--steps', '2',
                 '--scales', '1', '3', '--clip-scales', '2'])
    rows = rows_of(text)
    assert rows[0][:4] == ['guidance', 'guidance_scale', 'classifier_scale',
                           'acc colour']
    assert [row[:3] for row in rows[1:]] == [
        ['classifier-free', '1.0', '0'], ['classifier-free', '3.0', '0'],
        ['CLIP', '1', '2.0'], ['CLIP, unconditional model', '0', '2.0'],
        ['both', '3.0', '2.0']]
    base = str(tmp_path / 'base.safetensors')
    save_state_dict(init_model(CONFIG, None, device='cpu').state_dict(), base)
    with pytest.raises(SystemExit, match='--clip needs a config with a CLIP'):
        main(['--clip', '--config', CONFIG, '--checkpoint', base])


def test_tradeoff_rows_json_and_grid(tmp_path):
    """--tradeoff: the real row, then classifier-free, CLIP and combined
    points on the same prompts, written as JSON and a grid."""
    import json
    clip_config = str(CONFIGS / 'glide_noised-clip_1xb64-2k_shapes-32x32.py')
    ckpt = str(tmp_path / 'clip.safetensors')
    save_state_dict(init_model(clip_config, None, device='cpu').state_dict(),
                    ckpt)
    out = tmp_path / 'tradeoff.json'
    text = main(['--tradeoff', '--config', clip_config, '--checkpoint', ckpt,
                 '--sampler', 'dpm++2m', '--prompts', '2', '--per-prompt',
                 '4', '--steps', '2', '--scales', '3', '--clip-scales', '10',
                 '--both', '3:10', '--json', str(out), '--grid',
                 str(tmp_path / 'grid.png'), '--label', 'random'])
    rows = rows_of(text)
    assert rows[0][:5] == ['guide', 'guidance_scale', 'classifier_scale',
                           'judge all five', 'evaluator all five']
    assert [row[:3] for row in rows[1:]] == [
        ['real', '-', '-'], ['classifier-free', '3', '0'],
        ['CLIP', '1', '10'], ['both', '3', '10']]
    data = json.loads(out.read_text())
    real = data['rows'][0]
    # real renders of the captions, judged: every attribute right
    assert real['judge_all'] == 1.0 and real['eval_all'] == 1.0
    assert all(0 <= r['precision'] <= 1 and r['fd'] >= 0
               for r in data['rows'])
    assert (tmp_path / 'grid.png').stat().st_size > 0


def test_tradeoff_plots(tmp_path):
    """--plot draws the three pairs of curves from --tradeoff's JSON."""
    import json
    keys = dict(precision=0.9, recall=0.5, fd=10.0, judge_all=0.9,
                match=0.95)
    rows = [dict(keys, guide='real', guidance_scale=None,
                 classifier_scale=None)]
    rows += [dict(keys, guide='classifier-free', guidance_scale=g,
                  classifier_scale=0.0, fd=10.0 + g) for g in (1, 3)]
    rows += [dict(keys, guide='CLIP', guidance_scale=1.0,
                  classifier_scale=c) for c in (10, 100)]
    path = tmp_path / 'run.json'
    path.write_text(json.dumps(dict(label='test', rows=rows)))
    paths = main(['--plot', str(path), '--figures', str(tmp_path / 'f')])
    assert [p.split('/')[-1] for p in paths.splitlines()] == [
        'tradeoff_precision_recall.png', 'tradeoff_accuracy_fd.png',
        'tradeoff_match_fd.png']
    assert all((tmp_path / 'f' / p.split('/')[-1]).stat().st_size > 0
               for p in paths.splitlines())
