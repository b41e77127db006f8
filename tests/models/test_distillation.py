"""Guided distillation: the w input starts as the teacher, each stage's
target is the hand-computed one, a student samples in one pass per step,
and a distillation checkpoint holds the student only."""
import pytest
import torch
from mmengine import Config

from mmagic.apis import init_model
from projects.glide.models import distillation as d
from projects.glide.models.checkpoint import save_state_dict
from tests.conftest import TEST_CONFIGS
from tests.models.test_glide import randomize
from tests.tools.test_train_lora import data_root  # noqa: F401 (a fixture)

TINY = str(TEST_CONFIGS / 'glide_tiny_train-16.py')


def tiny_cfg(**model):
    cfg = Config.fromfile(TINY)
    cfg.model.update(model)
    return cfg


@pytest.fixture(scope='module')
def teacher_ckpt(tmp_path_factory):
    """A tiny teacher with random weights (every output non-trivial)."""
    path = str(tmp_path_factory.mktemp('teacher') / 'teacher.safetensors')
    save_state_dict(randomize(init_model(tiny_cfg(), device='cpu'))
                    .state_dict(), path)
    return path


def student(teacher_ckpt, stage='distill_guidance', teacher_embed=False,
            **train):
    unet = dict(Config.fromfile(TINY).model.unet, guidance_embed=True)
    cfg = tiny_cfg(unet=unet, train_cfg=dict(
        stage=stage, w_range=(1.0, 8.0), seed=0, teacher=dict(
            checkpoint=teacher_ckpt, guidance_embed=teacher_embed), **train))
    return init_model(cfg, teacher_ckpt, device='cpu')


def inputs(batch=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, 16, 16, generator=gen)


def test_the_zero_initialised_w_embedding_starts_as_the_teacher(
        teacher_ckpt):
    """A student loaded from the teacher's checkpoint gives the teacher's
    conditional output for every w (the embedding's last layer is 0)."""
    model = student(teacher_ckpt)
    teacher = model.teacher
    x, t = inputs(), torch.tensor([999, 500, 3])
    tokens, mask = model.tokenizer(['a red square'] * 3, device='cpu')
    with torch.no_grad():
        expected = teacher(x, t, tokens=tokens, mask=mask)
        for w in (1.0, 3.0, torch.tensor([1.0, 4.0, 8.0])):
            out = model.unet(x, t, tokens=tokens, mask=mask, guidance=w)
            torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)
    assert model.unet.guidance_embedding[-1].weight.abs().max() == 0
    with pytest.raises(ValueError, match='needs guidance=w'):
        model.unet(x, t, tokens=tokens, mask=mask)
    with pytest.raises(ValueError, match='guidance=w is for guidance-'):
        teacher(x, t, tokens=tokens, mask=mask, guidance=3.0)


def test_the_guidance_target_is_the_guided_output_per_sample(teacher_ckpt):
    model = student(teacher_ckpt)
    teacher = model.teacher
    x, t, w = inputs(2), torch.tensor([700, 20]), torch.tensor([2.0, 5.0])
    tokens, mask = model.tokenizer(['a red square', 'a blue circle', '',
                                    ''], device='cpu')
    with torch.no_grad():
        target = d.guidance_target(teacher, x, t,
                                   teacher.encode_text(tokens, mask), w)
        for i in range(2):  # by hand, one sample and its two passes at a time
            cond = teacher(x[i:i + 1], t[i:i + 1], tokens=tokens[i:i + 1],
                           mask=mask[i:i + 1])
            uncond = teacher(x[i:i + 1], t[i:i + 1], tokens=tokens[2:3],
                             mask=mask[2:3])
            guided = uncond[:, :3] + w[i] * (cond[:, :3] - uncond[:, :3])
            torch.testing.assert_close(target[i:i + 1, :3], guided,
                                       rtol=1e-3, atol=2e-4)
            torch.testing.assert_close(target[i:i + 1, 3:], cond[:, 3:],
                                       rtol=1e-3, atol=2e-4)


def test_the_step_grids_nest_25_13_7_4():
    grids = {n: d.step_grids(n, 1000) for n in (13, 7, 4)}
    assert grids[4][0].tolist() == [999, 666, 333, 0]
    assert grids[4][1].tolist() == grids[7][0].tolist()
    assert grids[7][1].tolist() == grids[13][0].tolist()
    assert len(grids[13][1]) == 25


def test_one_progressive_step_target_by_hand():
    """Salimans & Ho's target: two teacher DDIM steps t -> t_mid -> t_end
    (x_0 clipped), then the x_0 whose one DDIM step from x_t lands there;
    the last step (t_end = -1) targets the teacher's x_0 itself. The
    teacher is an affine v-predictor, so every step is computable."""
    abar = torch.linspace(0.999, 0.01, 1000)

    def teacher(x, t):
        return torch.cat([0.3 * x + 0.01 * t.view(-1, 1, 1, 1).float() /
                          1000, 0 * x], dim=1)

    x_t = inputs(2, seed=3)
    steps = (torch.tensor([666, 0]), torch.tensor([500, -1]),
             torch.tensor([333, -1]))
    target, _ = d.two_step_target(teacher, x_t, steps, abar, 'v')

    def by_hand(x, t, s):  # one clipped DDIM step of sample 0's teacher
        a, sg = abar[t].sqrt(), (1 - abar[t]).sqrt()
        x0 = (a * x - sg * teacher(x[None], torch.tensor([t]))[0, :3]).clamp(
            -1, 1)
        a_s, s_s = abar[s].sqrt(), (1 - abar[s]).sqrt()
        return a_s * x0 + s_s * (x - a * x0) / sg, x0

    x_mid, _ = by_hand(x_t[0], 666, 500)
    x_end, _ = by_hand(x_mid, 500, 333)
    a, sg = abar[666].sqrt(), (1 - abar[666]).sqrt()
    a_e, s_e = abar[333].sqrt(), (1 - abar[333]).sqrt()
    expected = (x_end - s_e / sg * x_t[0]) / (a_e - s_e / sg * a)
    torch.testing.assert_close(target[0], expected, rtol=1e-5, atol=1e-5)
    a0, s0 = abar[0].sqrt(), (1 - abar[0]).sqrt()
    x0_last = (a0 * x_t[1] - s0 * teacher(x_t[1:], torch.tensor([0]))[0, :3])
    torch.testing.assert_close(target[1], x0_last.clamp(-1, 1), rtol=1e-5,
                               atol=1e-5)
    # One student DDIM step with the target x_0 lands at the teacher's x_end.
    landed = a_e * target[0] + s_e * (x_t[0] - a * target[0]) / sg
    torch.testing.assert_close(landed, x_end, rtol=1e-4, atol=1e-4)


def test_stage_1_starts_at_zero_loss_and_trains_the_student_only(
        teacher_ckpt):
    """At w = 1 the teacher's guided output is its conditional output, which
    the initial student reproduces: loss ~0. At w in [1, 8] the loss is
    positive and its gradient reaches the student, not the teacher."""
    model = student(teacher_ckpt)
    x = inputs(4).clamp(-1, 1)
    samples = [dict(prompt=p) for p in ('a red square', 'a cat', 'x', '')]
    model.train_cfg['w_range'] = (1.0, 1.0)
    loss = model.loss(x, samples)['loss_distill']
    assert loss.item() < 1e-9
    model.train_cfg['w_range'] = (1.0, 8.0)
    loss = model.loss(x, samples)['loss_distill']
    assert loss.item() > 1e-6  # 1000x the w = 1 bound
    loss.backward()
    assert model.unet.guidance_embedding[-1].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.teacher.parameters())
    assert not any(k.startswith('teacher') or '_teacher' in k
                   for k in model.state_dict())


def test_stage_2_needs_a_guidance_distilled_teacher(teacher_ckpt):
    with pytest.raises(ValueError, match='teacher.guidance_embed=True'):
        student(teacher_ckpt, 'distill_steps', student_steps=4)
    with pytest.raises(ValueError, match='student_steps must be an int'):
        student(teacher_ckpt, 'distill_steps', True, student_steps=1)


def test_stage_2_loss_runs_from_a_stage_1_student(teacher_ckpt, tmp_path):
    first = student(teacher_ckpt)
    path = str(tmp_path / 'student.safetensors')
    save_state_dict(randomize(first).state_dict(), path)
    model = student(path, 'distill_steps', True, student_steps=4)
    loss = model.loss(inputs(4).clamp(-1, 1),
                      [dict(prompt='a red square')] * 4)['loss_distill']
    assert torch.isfinite(loss) and loss.item() > 0


def test_a_student_samples_with_one_pass_per_step(teacher_ckpt):
    model = student(teacher_ckpt)
    calls = []
    hook = model.unet.register_forward_hook(
        lambda m, args, out: calls.append(out.shape[0]))
    try:
        samples = model.infer(prompt=['a red square', 'a cat'],
                              guidance_scale=3.0, num_inference_steps=5,
                              seed=0, show_progress=False)['samples']
    finally:
        hook.remove()
    assert calls == [2] * 5  # batch 2, not the [cond, uncond] 4
    assert samples.shape == (2, 3, 16, 16) and torch.isfinite(samples).all()
    with pytest.raises(ValueError, match='negative_prompt: this guidance-'):
        model.infer(prompt='a cat', negative_prompt='blurry',
                    num_inference_steps=2, show_progress=False)


def test_a_distillation_stage_resumes_exactly(tmp_path, data_root,
                                              teacher_ckpt):
    """Stage 1 through tools/train.py: 3 steps, then --resume to 6, equals 6
    straight (the teacher reloaded from its file, not from the checkpoint,
    which holds the student only)."""
    from tests.tools.test_train_test import train as train_tiny

    def train(work_dir, *args, **extra):
        return train_tiny(work_dir, data_root, *args, **{
            'load_from': teacher_ckpt, 'train_cfg.val_interval': 100,
            'default_hooks.checkpoint.interval': 3,
            'model.unet.guidance_embed': True,
            'model.train_cfg.stage': 'distill_guidance',
            'model.train_cfg.teacher.checkpoint': teacher_ckpt,
            'model.train_cfg.teacher.guidance_embed': False, **extra})

    train(tmp_path / 'straight', **{'train_cfg.max_iters': 6})
    train(tmp_path / 'resumed', **{'train_cfg.max_iters': 3})
    train(tmp_path / 'resumed', '--resume', **{'train_cfg.max_iters': 6})
    a = torch.load(tmp_path / 'straight' / 'iter_6.pth', weights_only=False)
    b = torch.load(tmp_path / 'resumed' / 'iter_6.pth', weights_only=False)
    assert a['state_dict'].keys() == b['state_dict'].keys()
    assert not [k for k in a['state_dict'] if 'teacher' in k]
    for k, v in a['state_dict'].items():
        assert torch.equal(v, b['state_dict'][k]), k
    embed = a['ema_state_dict']['module.unet.guidance_embedding.2.weight'] \
        if 'module.unet.guidance_embedding.2.weight' in a.get(
            'ema_state_dict', {}) else \
        a['state_dict']['unet.guidance_embedding.2.weight']
    assert embed.abs().sum() > 0  # the w embedding trained
