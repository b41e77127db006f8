"""tools/publish_checkpoint.py: training checkpoints to small files."""
import pytest
import torch

from projects.glide.models.checkpoint import read_state_dict
from tools.publish_checkpoint import main as publish


def _training_checkpoint(path, **tensors):
    """An mmengine checkpoint whose state_dict (the EMA weights) holds
    ``tensors``."""
    torch.save(dict(state_dict=tensors, meta=dict(iter=3),
                    ema_state_dict={}), path)
    return str(path)


def test_merge_joins_runs_that_share_their_frozen_network(tmp_path):
    base = torch.randn(4, 4)
    up = _training_checkpoint(tmp_path / 'up.pth', **{
        'unet.w': base, 'unet_up.w': torch.randn(3)})
    clip = _training_checkpoint(tmp_path / 'clip.pth', **{
        'unet.w': base.clone(), 'classifier.w': torch.randn(2)})
    out = tmp_path / 'all.safetensors'
    publish([up, str(out), '--merge', clip])
    state = read_state_dict(str(out))
    assert set(state) == {'unet.w', 'unet_up.w', 'classifier.w'}
    assert {v.dtype for v in state.values()} == {torch.float16}
    torch.testing.assert_close(state['unet.w'].float(), base, atol=2e-3,
                               rtol=2e-3)

    # a published (bare) file merges as well
    again = tmp_path / 'again.safetensors'
    publish([up, str(again), '--merge', str(out)])
    assert set(read_state_dict(str(again))) == set(state)


def test_merge_refuses_runs_whose_shared_network_differs(tmp_path, capsys):
    up = _training_checkpoint(tmp_path / 'up.pth', **{'unet.w': torch.ones(2)})
    other = _training_checkpoint(tmp_path / 'other.pth',
                                 **{'unet.w': torch.zeros(2)})
    out = tmp_path / 'x.safetensors'
    with pytest.raises(SystemExit, match='unet.w differs between'):
        publish([up, str(out), '--merge', other])
    assert not out.exists()


def test_merge_only_takes_the_named_networks(tmp_path):
    """The distilled cascade: the student's unet beside another file's
    upsampler; that file's own unet (the teacher) and CLIP are left out."""
    student = _training_checkpoint(tmp_path / 'student.pth',
                                   **{'unet.w': torch.ones(2)})
    demo = _training_checkpoint(tmp_path / 'demo.pth', **{
        'unet.w': torch.zeros(2), 'unet_up.w': torch.full((3, ), 2.0),
        'classifier.w': torch.ones(1)})
    out = tmp_path / 'distilled.safetensors'
    publish([student, str(out), '--merge', demo, '--merge-only', 'unet_up.'])
    state = read_state_dict(str(out))
    assert set(state) == {'unet.w', 'unet_up.w'}
    assert torch.equal(state['unet.w'].float(), torch.ones(2))
    assert torch.equal(state['unet_up.w'].float(), torch.full((3, ), 2.0))
