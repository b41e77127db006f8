"""Write a procedural captioned-shapes dataset (see projects/glide/shapes).

Example::

    python tools/make_shapes_dataset.py --out data/shapes --num 5000 \
        --seed 0 --size 32

writes ``data/shapes/images/000000.png ...`` and
``data/shapes/annotations.jsonl`` (one ``{"path", "caption", "attributes"}``
object per line, ``path`` relative to ``--out``). Scene ``i`` depends only
on ``--seed`` and ``i``, so a larger ``--num`` extends a smaller one.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__),
                                                '..')))

from projects.glide.runtime import require_environment  # noqa: E402

require_environment('tools/make_shapes_dataset.py', ('numpy', 'PIL'))

from projects.glide.shapes import value_counts, write_dataset  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='data/shapes',
                        help='output folder (default: data/shapes)')
    parser.add_argument('--num', type=int, default=5000,
                        help='number of images (default: 5000)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the set (default: 0)')
    parser.add_argument('--size', type=int, default=32,
                        help='image side in pixels, at least 16 '
                        '(default: 32)')
    parser.add_argument('--quiet', action='store_true',
                        help='print no progress')
    args = parser.parse_args(argv)
    if args.num < 0:
        parser.error('--num must be >= 0')
    if args.size < 16:
        parser.error('--size must be at least 16')
    return args


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    step = max(1, args.num // 20)

    def progress(done, total):
        if not args.quiet and (done % step == 0 or done == total):
            print(f'\r{done}/{total} images ({time.time() - start:.1f} s)',
                  end='' if done < total else '\n', file=sys.stderr,
                  flush=True)

    from projects.glide.files import WriteError
    try:
        records = write_dataset(args.out, args.num, args.seed, args.size,
                                progress=progress)
    except WriteError as err:
        raise SystemExit(f'make_shapes_dataset.py: {err}')
    counts = value_counts(records)
    print(f'wrote {len(records)} images of {args.size}x{args.size} and '
          f'{os.path.join(args.out, "annotations.jsonl")}')
    for key, values in counts.items():
        print(f'  {key}: ' + ', '.join(f'{v} {c}' for v, c in
                                       sorted(values.items())))


if __name__ == '__main__':
    main()
