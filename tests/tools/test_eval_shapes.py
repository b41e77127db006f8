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
