"""Options of the small translation recipe: the residual mapping with global context, photo-scale ageing of
training pairs, grayscale targets, and VAE_A warm-started from VAE_B. References: closed forms (identity at
init, explicit mean / std FiLM), the synthesizer called directly on the whole photo, and the checkpoints."""

from __future__ import annotations

import pytest
import torch
from photo_sources import TensorPhotos
from torch import nn

from oldphoto_bench.data import PairsDataset
from oldphoto_bench.degrade import Synthesizer
from oldphoto_bench.imageio import rgb_to_luma
from oldphoto_bench.models import MappingNetwork, latent_valid_from_mask
from oldphoto_bench.models.mapping import GlobalContext
from oldphoto_bench.restore import LayerwiseRunner
from oldphoto_bench.seeding import torch_generator


def _randomise(module: nn.Module, seed: int) -> nn.Module:
    g = torch_generator(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.2 if p.dim() > 1 else 0.3))
    return module.eval()


def test_residual_mapping_with_context_is_the_identity_at_init():
    z = torch.randn(2, 8, 6, 7, generator=torch_generator(0))
    for nonlocal_block in (False, True):
        t = MappingNetwork(8, (16, 16), n_res_blocks=1, norm="batch", nonlocal_block=nonlocal_block,
                           nonlocal_inter_channels=4, nonlocal_res_blocks=1, residual=True, global_context=True,
                           init_seed=3).eval()
        assert torch.equal(t(z), z)
    plain = MappingNetwork(8, (16, 16), n_res_blocks=1, init_seed=3).eval()
    assert not torch.allclose(plain(z), z)


def test_global_context_is_film_from_whole_image_statistics():
    ctx = _randomise(GlobalContext(5, hidden=7), 1)
    h = torch.randn(3, 5, 4, 6, generator=torch_generator(2))
    flat = h.flatten(2).double()
    mean, std = flat.mean(-1), ((flat - flat.mean(-1, keepdim=True)) ** 2).mean(-1).sqrt()
    lin1, lin2 = ctx.mlp[0], ctx.mlp[2]
    hidden = torch.relu(torch.cat([mean, std], 1) @ lin1.weight.double().T + lin1.bias.double())
    gamma, beta = (hidden @ lin2.weight.double().T + lin2.bias.double()).chunk(2, 1)
    expected = h.double() * (1 + gamma[..., None, None]) + beta[..., None, None]
    torch.testing.assert_close(ctx(h).double(), expected, atol=1e-5, rtol=1e-5)
    # a change far away changes every cell (the statistics are global), unlike a 3x3 conv's output
    h2 = h.clone()
    h2[..., -1, -1] += 5.0
    assert not torch.allclose(ctx(h)[..., 0, 0], ctx(h2)[..., 0, 0])


def test_layerwise_runner_matches_the_residual_context_mapping():
    g = torch_generator(4)
    t = _randomise(MappingNetwork(8, (16, 24), n_res_blocks=1, nonlocal_block=True, nonlocal_inter_channels=8,
                                  nonlocal_res_blocks=1, residual=True, global_context=True), 5)
    z = torch.randn(2, 8, 9, 11, generator=g)
    valid = latent_valid_from_mask((torch.rand(2, 1, 36, 44, generator=g) > 0.95).float(), 4)
    with torch.no_grad():
        a, b = t(z, valid), LayerwiseRunner(1).map(t, z, valid)
    torch.testing.assert_close(b, a, atol=2e-5 * a.abs().max().item(), rtol=0)


def _photos() -> TensorPhotos:
    """Two random 'photos' of different sizes (the synthesizer acts on the whole of each)."""
    g = torch_generator(7)
    return TensorPhotos([torch.rand(1, 3, 70, 90, generator=g), torch.rand(1, 3, 64, 48, generator=g)], ["p0", "p1"])


def test_photo_scope_crops_the_whole_photo_aged_once():
    src = _photos()
    ds = PairsDataset(src, "paper", crop=32, train=True, seed=5, degrade_scope="photo", photo_reuse=2)
    synth = Synthesizer("paper")
    for epoch in (0, 1, 2):
        ds.set_epoch(epoch)
        for i in range(len(src)):
            item = ds[i]
            rec = item["record"]
            assert rec["degrade_scope"] == "photo" and rec["photo_seed"] == ds.photo_seed(i)
            whole = synth(src.images[i], seed=rec["photo_seed"])
            top, left, ch, cw = rec["crop"]
            ref = whole.image[0, :, top : top + ch, left : left + cw]
            ref_mask = whole.mask[0, :, top : top + ch, left : left + cw].float()
            if rec["flip"]:
                ref, ref_mask = ref.flip(-1), ref_mask.flip(-1)
            assert torch.equal(item["degraded"], ref) and torch.equal(item["mask"], ref_mask)
    ds.set_epoch(0)
    seeds = [ds.photo_seed(0)]
    ds.set_epoch(1)
    seeds.append(ds.photo_seed(0))
    ds.set_epoch(2)
    seeds.append(ds.photo_seed(0))
    assert seeds[0] == seeds[1] != seeds[2]  # photo_reuse=2: epochs 0 and 1 share one aged photo
    fresh = PairsDataset(src, "paper", crop=32, train=True, seed=5, degrade_scope="photo", photo_reuse=2)
    fresh.set_epoch(2)
    assert all(torch.equal(fresh[i]["degraded"], ds[i]["degraded"]) for i in range(len(src)))  # cache is pure


def test_gray_target_follows_a_grayscale_input():
    src = _photos()
    gray_preset = {"name": "g", "stages": [{"name": "colour", "groups": [
        {"name": "grayscale", "p": 1.0, "ops": [{"type": "grayscale"}]}]}]}
    for scope in ("crop", "photo"):
        on = PairsDataset(src, gray_preset, crop=32, seed=1, degrade_scope=scope, gray_target=True)[0]
        off = PairsDataset(src, gray_preset, crop=32, seed=1, degrade_scope=scope, gray_target=False)[0]
        assert on["record"]["gray_target"] and "gray_target" not in off["record"]
        c = on["clean"]
        assert torch.equal(c[0], c[1]) and torch.equal(c[1], c[2])
        torch.testing.assert_close(c[:1], rgb_to_luma(off["clean"][None])[0])
    colour = PairsDataset(src, {"name": "none", "stages": []}, crop=32, seed=1, gray_target=True)[0]
    assert not torch.equal(colour["clean"][0], colour["clean"][1])  # colour input: colour target


def test_vae_a_warm_start_copies_vae_b(tmp_path):
    from oldphoto_bench.train import Trainer, resolve_config, train_stage
    from oldphoto_bench.train.artifacts import load_vae

    train_stage("vae-b", "smoke", runs=tmp_path, data="embedded", progress=False, overrides=["schedule.steps=1"])
    cfg = resolve_config("smoke", "vae-a", ["schedule.steps=1", "model.vae_a_init=vae-b"])
    trainer = Trainer("vae-a", cfg, tmp_path, data="embedded", progress=False, tensorboard=False)
    vae_b = load_vae(tmp_path, "vae-b")
    start = trainer.stage.models["vae"].state_dict()
    for k, v in vae_b.state_dict().items():
        assert torch.equal(start[k], v), k
    trainer.close()
    cold = Trainer("vae-a", resolve_config("smoke", "vae-a", ["schedule.steps=1"]), tmp_path / "cold",
                   data="embedded", progress=False, tensorboard=False)
    assert not torch.equal(cold.stage.models["vae"].state_dict()["encoder.mu_head.weight"],
                           vae_b.state_dict()["encoder.mu_head.weight"])
    cold.close()


def test_mapping_decoder_finetune_trains_vae_b_decoder_and_restore_uses_it(tmp_path):
    from oldphoto_bench.restore import Restorer
    from oldphoto_bench.train import train_stage
    from oldphoto_bench.train.artifacts import load_output_vae, load_vae

    for stage in ("vae-b", "vae-a"):
        train_stage(stage, "smoke", runs=tmp_path, data="embedded", progress=False, overrides=["schedule.steps=1"])
    train_stage("mapping", "smoke", runs=tmp_path, data="embedded", progress=False,
                overrides=["schedule.steps=2", "model.mapping_decoder=finetune", "optim.decoder_lr_scale=0.5",
                           "loss.mapping_image_ssim=1.0"])
    vae_b, tuned = load_vae(tmp_path, "vae-b"), load_output_vae(tmp_path)
    changed = lambda a, b: any(not torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))  # noqa: E731
    assert changed(tuned.decoder, vae_b.decoder)          # the decoder trained with T
    assert not changed(tuned.encoder, vae_b.encoder)      # its encoder stayed VAE_B's
    restorer = Restorer(tmp_path, with_scratch=False, faces=False)
    assert not changed(restorer.vae_b, tuned)             # restore decodes with the fine-tuned copy
    # frozen (the paper): the mapping checkpoint has no decoder and restore decodes with VAE_B
    train_stage("mapping", "smoke", runs=tmp_path, data="embedded", progress=False, overwrite=True,
                overrides=["schedule.steps=1"])
    assert not changed(load_output_vae(tmp_path), vae_b)
    with pytest.raises(KeyError, match="valid names: frozen, finetune"):
        train_stage("mapping", "smoke", runs=tmp_path, data="embedded", progress=False, overwrite=True,
                    overrides=["schedule.steps=1", "model.mapping_decoder=thaw"])


def test_stage_lr_scales_multiply_the_scheduled_lr():
    from oldphoto_bench.train.stages import Stage

    stage = Stage.__new__(Stage)
    stage.optimizers = {n: torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0) for n in ("a", "b")}
    stage.lr_scales = {"b": 0.1}
    stage.set_lr(2e-3)
    assert stage.optimizers["a"].param_groups[0]["lr"] == 2e-3
    assert stage.optimizers["b"].param_groups[0]["lr"] == pytest.approx(2e-4)


def test_mapping_image_terms_on_the_guided_filter(tmp_path):
    """``loss.mapping_image_guide_radius``: the image terms score the guided filter of the decoded crop (what
    restore outputs), the latent term is untouched; same seed, same batch, same initial mapping."""
    from oldphoto_bench.train import Trainer, resolve_config, train_stage

    for stage in ("vae-b", "vae-a"):
        train_stage(stage, "smoke", runs=tmp_path, data="embedded", progress=False, overrides=["schedule.steps=1"])
    first = {}
    for radius in (0, 2):
        cfg = resolve_config("smoke", "mapping", ["schedule.steps=1", "loss.mapping_image_l1=1.0",
                                                  f"loss.mapping_image_guide_radius={radius}"])
        runs = tmp_path / f"r{radius}"
        runs.mkdir()
        for stage in ("vae-b", "vae-a"):
            (runs / stage).symlink_to(tmp_path / stage)
        trainer = Trainer("mapping", cfg, runs, data="embedded", progress=False, tensorboard=False)
        first[radius] = trainer.stage.train_step(0)
        trainer.close()
    assert first[0]["latent_l1"] == first[2]["latent_l1"]
    assert first[0]["image_l1"] != first[2]["image_l1"]
