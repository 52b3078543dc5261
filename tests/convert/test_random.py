"""--random checkpoints, full-size parameter counts, the safetensors writer/reader."""

import json
import os
import struct
import unittest

import torch

from ._util import REF, make_tmp, run_cli
from convert import ConvertError
from convert.random_ckpt import count_component, load_configs
from convert.safetensors_io import load_file, read_header, save_file


class FullSizeParameterCounts(unittest.TestCase):
    """Counted on the meta device from the config files: nothing is allocated."""

    def test_counts_match_the_real_models(self):
        with open(os.path.join(REF, "full-size-configs", "param_counts.json")) as f:
            ref = json.load(f)
        for name in ("ms-1.7b", "zeroscope-576w"):
            configs = load_configs(name)
            grand = 0
            for comp in ("unet", "vae", "text_encoder"):
                with self.subTest(config=name, component=comp):
                    total, by_top = count_component(comp, configs[comp])
                    self.assertEqual(total, ref[comp]["total"])
                    self.assertEqual(by_top, ref[comp]["by_top_level_module"])
                    grand += total
            self.assertEqual(grand, ref["total"])

    def test_shipped_ms_configs_are_the_reference_ones(self):
        configs = load_configs("ms-1.7b")
        for comp in ("unet", "vae", "text_encoder"):
            with open(os.path.join(REF, "full-size-configs", "text-to-video-ms-1.7b", comp, "config.json")) as f:
                self.assertEqual(configs[comp], json.load(f))

    def test_tiny_config(self):
        configs = load_configs("tiny")
        self.assertEqual(configs["unet"]["sample_size"], 16)
        self.assertEqual(count_component("unet", configs["unet"])[0], 339588)
        self.assertEqual(count_component("text_encoder", configs["text_encoder"])[0], 1597162)
        self.assertEqual(count_component("vae", configs["vae"])[0], 167959)


class RandomTinyRoundTrip(unittest.TestCase):
    def test_random_then_convert(self):
        root = make_tmp("rand")
        ckpt = os.path.join(root, "ckpt")
        proc = run_cli("--random", "tiny", ckpt, "--seed", "7")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("339,588", proc.stdout)
        for rel in ("model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
                    "vae/config.json", "vae/diffusion_pytorch_model.safetensors", "text_encoder/config.json",
                    "text_encoder/model.safetensors", "tokenizer/vocab.json", "tokenizer/merges.txt",
                    "tokenizer/tokenizer_config.json", "tokenizer/special_tokens_map.json",
                    "scheduler/scheduler_config.json"):
            self.assertTrue(os.path.isfile(os.path.join(ckpt, rel)), rel)
        sd = load_file(os.path.join(ckpt, "unet", "diffusion_pytorch_model.safetensors"))
        self.assertTrue(torch.equal(sd["conv_norm_out.weight"], torch.ones(16)))
        self.assertTrue(torch.equal(sd["conv_norm_out.bias"], torch.zeros(16)))
        self.assertAlmostEqual(sd["down_blocks.0.resnets.0.conv1.weight"].std().item(), 0.02, delta=0.004)

        # same seed -> same bytes; another seed -> different weights
        again = os.path.join(root, "again")
        self.assertEqual(run_cli("--random", "tiny", again, "--seed", "7", "--quiet").returncode, 0)
        with open(os.path.join(ckpt, "unet", "diffusion_pytorch_model.safetensors"), "rb") as a, \
                open(os.path.join(again, "unet", "diffusion_pytorch_model.safetensors"), "rb") as b:
            self.assertEqual(a.read(), b.read())

        model = os.path.join(root, "model")
        proc = run_cli(ckpt, model, "--quiet")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout, "")
        unet = torch.jit.load(os.path.join(model, "unet.pt"))
        params = dict(unet.named_parameters())
        for k, v in sd.items():
            self.assertTrue(torch.equal(params[k], v), k)
        te = torch.jit.load(os.path.join(model, "text_encoder.pt"))
        dec = torch.jit.load(os.path.join(model, "vae_decoder.pt"))
        enc = torch.jit.load(os.path.join(model, "vae_encoder.pt"))
        torch.manual_seed(0)
        with torch.no_grad():
            ids = torch.randint(0, 49408, (2, 77))
            emb = te(ids)
            self.assertEqual(tuple(emb.shape), (2, 77, 32))
            # default video: sample_size 16 latents -> 32x32 frames (vae_scale_factor 2)
            lat = torch.randn(2, 4, 3, 16, 16)
            noise = unet(lat, torch.tensor([999, 999]), emb)
            self.assertEqual(tuple(noise.shape), (2, 4, 3, 16, 16))
            self.assertTrue(torch.isfinite(noise).all())
            frames = dec(lat[0].permute(1, 0, 2, 3) / 0.18215)
            self.assertEqual(tuple(frames.shape), (3, 3, 32, 32))
            self.assertTrue(torch.isfinite(frames).all())
            mean, std = enc(frames.clamp(-1, 1))
            self.assertEqual(tuple(mean.shape), (3, 4, 16, 16))
            self.assertTrue((std > 0).all())

    def test_random_unknown_config_is_usage_error(self):
        proc = run_cli("--random", "huge", os.path.join(make_tmp("rand"), "x"))
        self.assertEqual(proc.returncode, 2)


class SafetensorsIO(unittest.TestCase):
    def test_roundtrip_dtypes(self):
        path = os.path.join(make_tmp("st"), "t.safetensors")
        tensors = {
            "f32": torch.randn(3, 4),
            "f16": torch.randn(5).half(),
            "bf16": torch.randn(2, 2).bfloat16(),
            "i64": torch.arange(7),
            "u8": torch.arange(9, dtype=torch.uint8).reshape(3, 3),
            "bool": torch.tensor([True, False]),
            "scalar": torch.tensor(3.5),
            "empty": torch.zeros(0, 4),
        }
        save_file(tensors, path, metadata={"format": "pt"})
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
        self.assertEqual(n % 8, 0)
        header, meta, start, size = read_header(path)
        self.assertEqual(meta, {"format": "pt"})
        back = load_file(path)
        self.assertEqual(list(back), list(tensors))
        for k, v in tensors.items():
            self.assertEqual(back[k].dtype, v.dtype, k)
            self.assertTrue(torch.equal(back[k], v), k)

    def test_corrupt_files(self):
        d = make_tmp("st")
        bad = os.path.join(d, "bad.safetensors")
        with open(bad, "wb") as f:
            f.write(b"\x01\x02")
        with self.assertRaisesRegex(ConvertError, "not a safetensors file"):
            load_file(bad)
        with open(bad, "wb") as f:
            f.write(struct.pack("<Q", 8) + b"{nope!!}")
        with self.assertRaisesRegex(ConvertError, "invalid JSON"):
            load_file(bad)
        hdr = json.dumps({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 12]}}).encode()
        with open(bad, "wb") as f:
            f.write(struct.pack("<Q", len(hdr)) + hdr + b"\0" * 16)
        with self.assertRaisesRegex(ConvertError, "needs 16 bytes"):
            load_file(bad)


if __name__ == "__main__":
    unittest.main()
