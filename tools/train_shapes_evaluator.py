"""Train the shapes evaluation network (projects/glide/shapes/evaluator.py).

    OMP_NUM_THREADS=1 python tools/train_shapes_evaluator.py \
        --out checkpoints/shapes_evaluator.safetensors

A small CNN classifying the five captioned attributes and the texture of
clean rendered 32x32 scenes (seed ``TRAIN_SEED``), used only to evaluate
samples (features for the Fréchet distance and precision/recall, a
caption-match score, the texture read back), never to guide them. After
training it is scored on ``--test`` freshly rendered scenes of another seed
(``--test-seed``), and that accuracy is stored in the file's metadata.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__),
                                                '..')))

from projects.glide.runtime import require_environment  # noqa: E402

require_environment('tools/train_shapes_evaluator.py')

from projects.glide.shapes import evaluator as ev  # noqa: E402

#: Scene seed of the held-out test scenes (training: ev.TRAIN_SEED; the
#: GLIDE training set: 0; the held-out prompts of eval_shapes.py: 12345).
TEST_SEED = 31337


def held_out_accuracy(net, n: int, seed: int = TEST_SEED) -> dict:
    """Accuracy of every head on ``n`` fresh scenes of ``seed``."""
    images, attributes = ev.render_scenes(n, seed)
    return ev.attribute_accuracy(ev.predict(net, images), attributes)


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', default=ev.DEFAULT_PATH)
    p.add_argument('--train', type=int, default=12000,
                   help='training scenes (default: 12000)')
    p.add_argument('--steps', type=int, default=1500)
    p.add_argument('--batch', type=int, default=64)
    p.add_argument('--lr', type=float, default=3e-3)
    p.add_argument('--test', type=int, default=2000,
                   help='held-out test scenes (default: 2000)')
    p.add_argument('--test-seed', type=int, default=TEST_SEED)
    args = p.parse_args(argv)
    import torch
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '1')))
    start = time.time()
    net = ev.train_evaluator(args.train, args.steps, args.batch, args.lr)
    minutes = (time.time() - start) / 60
    acc = held_out_accuracy(net, args.test, args.test_seed)
    notes = {'held_out_accuracy': {k: round(v, 4) for k, v in acc.items()},
             'test_scenes': args.test, 'test_seed': args.test_seed,
             'train_scenes': args.train, 'train_seed': ev.TRAIN_SEED,
             'steps': args.steps, 'batch': args.batch,
             'train_minutes': round(minutes, 1)}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    ev.save_evaluator(net, args.out, notes)
    print(json.dumps(notes, indent=1))
    print(f'wrote {args.out} ({os.path.getsize(args.out) / 1024:.0f} KiB)')
    return notes


if __name__ == '__main__':
    main()
