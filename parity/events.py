"""Reads a TensorBoard event file (or a folder of them) with TensorBoard's own EventAccumulator
and prints what it found as JSON: scalars per tag, images per tag, and the HParams plugin's
session data (settings and end status). The reference reader of crates/ebgan-exp/src/results/
events.rs (tests/tensorboard.rs).

Usage: python parity/events.py PATH
"""
import json
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2


def main(path):
    acc = EventAccumulator(path, size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    out = {
        "scalars": {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags["scalars"]},
        "images": {t: [[e.step, e.width, e.height, len(e.encoded_image_string)] for e in acc.Images(t)]
                   for t in tags["images"]},
        "hparams": {},
        "status": None,
    }
    for tag, content in acc.PluginTagToContent("hparams").items():
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        if data.HasField("session_start_info"):
            for k, v in data.session_start_info.hparams.items():
                out["hparams"][k] = v.number_value if v.HasField("number_value") else (
                    v.bool_value if v.HasField("bool_value") else v.string_value)
        if data.HasField("session_end_info"):
            out["status"] = data.session_end_info.status
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
