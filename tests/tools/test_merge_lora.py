"""tools/merge_lora.py: adapters folded into a plain checkpoint."""
import pytest
import torch

from mmagic.apis import init_model
from projects.glide.models.lora import is_adapter_key
from tests.models.test_lora import (LORA, TINY, base_ckpt,  # noqa: F401
                                    build, train_adapters, unet_out)


def test_merged_checkpoint_samples_as_the_adapted_model(
        tmp_path, base_ckpt):  # noqa: F811
    from tools.merge_lora import main
    trained = train_adapters(build(LORA, base_ckpt))
    adapter = str(tmp_path / 'style.safetensors')
    trained.save_lora(adapter)
    out = str(tmp_path / 'merged.safetensors')
    main([TINY, base_ckpt, adapter, '--out', out, '--scale', '0.5'])
    merged = init_model(TINY, out, device='cpu')
    assert not any(map(is_adapter_key, merged.state_dict()))
    reference = build(checkpoint=base_ckpt)
    reference.load_lora(adapter, scale=0.5)
    torch.testing.assert_close(unet_out(merged), unet_out(reference),
                               rtol=1e-4, atol=1e-5)
    assert not torch.allclose(unet_out(merged),
                              unet_out(build(checkpoint=base_ckpt)),
                              atol=1e-3)


def test_one_scale_per_adapter(capsys):
    from tools.merge_lora import main
    with pytest.raises(SystemExit):
        main([TINY, 'base.pth', 'a.safetensors', '--out', 'm.pth',
              '--scale', '1', '2'])
    assert '--scale needs one value per adapter (1), got 2' in \
        capsys.readouterr().err
