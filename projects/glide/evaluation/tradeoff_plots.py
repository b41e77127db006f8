"""Plots of the guidance trade-off sweep (``tools/eval_shapes.py
--tradeoff``): the paper's pairs of curves and a grid of samples of one
caption across guidance scales. Matplotlib with the Agg backend.
"""
import json
import os

#: The trade-off plots: file name, (x key, x label), (y key, y label).
FD_LABEL = 'Fréchet distance (evaluator features, log)'
PLOTS = [
    ('tradeoff_precision_recall.png', ('recall', 'recall'),
     ('precision', 'precision')),
    ('tradeoff_accuracy_fd.png', ('fd', FD_LABEL),
     ('judge_all', 'caption accuracy, all five (judge)')),
    ('tradeoff_match_fd.png', ('fd', FD_LABEL),
     ('match', 'caption match (evaluator)')),
]


def plot_tradeoff(json_paths, out_dir):
    """One figure per pair of measures, every model's guides as curves
    over the scale (each point labelled with its scale), the real row as a
    star."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    runs = [json.load(open(p)) for p in json_paths]
    styles = {'classifier-free': ('tab:blue', 'o'), 'CLIP': ('tab:red', 's'),
              'both': ('tab:purple', 'D')}
    lines = ['-', '--', ':']
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for name, (xk, xl), (yk, yl) in PLOTS:
        fig, ax = plt.subplots(figsize=(6, 4.5))
        for i, run in enumerate(runs):
            for guide, (colour, marker) in styles.items():
                rows = [r for r in run['rows'] if r['guide'] == guide]
                if not rows:
                    continue
                ax.plot([r[xk] for r in rows], [r[yk] for r in rows],
                        lines[i % 3], color=colour, marker=marker,
                        alpha=0.9 if i == 0 else 0.6,
                        label=f'{guide} ({run["label"]})')
                for r in rows:
                    scale = r['guidance_scale'] if guide != 'CLIP' else \
                        r['classifier_scale']
                    text = f'{scale:g}' if guide != 'both' else \
                        f'{r["guidance_scale"]:g}+{r["classifier_scale"]:g}'
                    ax.annotate(text, (r[xk], r[yk]), fontsize=6,
                                xytext=(3, 3), textcoords='offset points',
                                color=colour)
            real = [r for r in run['rows'] if r['guide'] == 'real']
            if real and i == 0:
                ax.plot(real[0][xk], real[0][yk], '*', color='k',
                        markersize=12, label='real renders')
        if xk == 'fd':  # from the real floor to collapsed samples
            ax.set_xscale('log')
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_title(f'{yl} vs {xl}', fontsize=9)
        path = os.path.join(out_dir, name)
        fig.savefig(path, dpi=100, bbox_inches='tight')
        plt.close(fig)
        paths.append(path)
        print(f'wrote {path}')
    return paths


def save_scale_grid(path, firsts, prompt, zoom=3):
    """A PNG: one row of samples of ``prompt`` per sweep point."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from projects.glide.shapes import to_uint8_images
    cols = len(firsts[0][1])
    fig, axes = plt.subplots(len(firsts), cols, squeeze=False,
                             figsize=(cols * 0.5 * zoom,
                                      len(firsts) * 0.5 * zoom))
    for r, (label, images) in enumerate(firsts):
        for c, image in enumerate(to_uint8_images(images)):
            ax = axes[r][c]
            ax.imshow(image, interpolation='nearest')
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r][0].set_ylabel(label, rotation=0, ha='right', va='center',
                              fontsize=8)
    fig.suptitle(f'"{prompt}"\n(guide guidance_scale/classifier_scale)',
                 fontsize=9)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=80, bbox_inches='tight')
    plt.close(fig)
