"""tools/eval_shapes.py produces its tables (random small model, few steps)."""
from mmagic.apis import init_model
from projects.glide.models.checkpoint import save_state_dict
from tests.conftest import CONFIGS
from tools.eval_shapes import main

CONFIG = str(CONFIGS / 'glide_shapes-32.py')


def test_guidance_and_sampler_tables(tmp_path):
    model = init_model(CONFIG, None, device='cpu')
    ckpt = str(tmp_path / 'shapes.safetensors')
    save_state_dict(model.state_dict(), ckpt)
    common = ['--config', CONFIG, '--checkpoint', ckpt, '--prompts', '2',
              '--per-prompt', '2', '--steps', '2']
    text = main(common + ['--scales', '1', '3', '--out',
                          str(tmp_path / 't.md')])
    lines = [line for line in text.splitlines() if line.startswith('| ')]
    assert lines[0].startswith('| guidance | acc colour')
    assert [line.split(' | ')[0] for line in lines[1:]] == ['| 1.0', '| 3.0']
    assert (tmp_path / 't.md').read_text().startswith('Classifier-free')
    text = main(common + ['--precision'])
    assert 'PSNR' in text and '| bfloat16 |' in text


def test_a_sampler_row_keeps_the_configs_prediction_type(tmp_path):
    """The sampler table swaps only the sampler's type: a v-predicting
    model stays v-predicting (and its min_snr_floor stays valid)."""
    from tools.eval_shapes import load
    model = init_model(CONFIG, None, device='cpu')
    ckpt = str(tmp_path / 'shapes.safetensors')
    save_state_dict(model.state_dict(), ckpt)
    for kind in ('GlideAncestralScheduler', 'GlideDDIMScheduler'):
        scheduler = load(CONFIG, ckpt, kind).diffusion_scheduler
        assert type(scheduler).__name__ == kind
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
    inpaint_config = str(CONFIGS / 'glide_shapes-32-inpaint.py')
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
    lines = [line for line in text.splitlines() if line.startswith('| ')]
    assert lines[0].startswith('| model | acc colour')
    assert [line.split(' | ')[0] for line in lines[1:]] == [
        '| base + paste-back', '| fine-tuned']
    for line in lines[1:]:
        known = float(line.split(' | ')[-2])
        assert known <= 1.0, line  # 8-bit levels: the known region is kept


def test_clip_table_rows(tmp_path):
    """Classifier-free rows, CLIP rows on the conditional model
    (guidance_scale 1) and on the unconditional one (0), combined rows, in
    that order; a config without a CLIP guide is refused."""
    import pytest
    clip_config = str(CONFIGS / 'glide_shapes-32-clip.py')
    ckpt = str(tmp_path / 'clip.safetensors')
    save_state_dict(init_model(clip_config, None, device='cpu').state_dict(),
                    ckpt)
    text = main(['--clip', '--config', clip_config, '--checkpoint', ckpt,
                 '--prompts', '2', '--per-prompt', '1', '--steps', '2',
                 '--scales', '1', '3', '--clip-scales', '2'])
    lines = [line for line in text.splitlines() if line.startswith('| ')]
    assert lines[0].startswith('| guidance | guidance_scale | '
                               'classifier_scale | acc colour')
    assert [line.split(' | ')[:3] for line in lines[1:]] == [
        ['| classifier-free', '1.0', '0'], ['| classifier-free', '3.0', '0'],
        ['| CLIP', '1', '2.0'], ['| CLIP, unconditional model', '0', '2.0'],
        ['| both', '3.0', '2.0']]
    base = str(tmp_path / 'base.safetensors')
    save_state_dict(init_model(CONFIG, None, device='cpu').state_dict(), base)
    with pytest.raises(SystemExit, match='--clip needs a config with a CLIP'):
        main(['--clip', '--config', CONFIG, '--checkpoint', base])
