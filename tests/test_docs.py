"""README.md and docs/*.md: every relative link leads to a file of the
repository, every page of docs/ is linked from the README, and the README
stays a page a newcomer reads in minutes."""
import re

import pytest

from tests.conftest import ROOT

README = ROOT / 'README.md'
PAGES = sorted((ROOT / 'docs').glob('*.md'))
LINK = re.compile(r'\]\(([^)\s]+)\)')


def relative_links(path):
    """The link targets of a Markdown file that are files of this
    repository (no web address, no anchor-only link), resolved."""
    for target in LINK.findall(path.read_text()):
        if re.match(r'[a-z]+:', target) or target.startswith('#'):
            continue
        yield target, (path.parent / target.split('#')[0]).resolve()


@pytest.mark.parametrize('path', [README] + PAGES,
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_lead_to_files(path):
    broken = [t for t, resolved in relative_links(path)
              if not resolved.exists()]
    assert not broken, broken


def test_every_docs_page_is_linked_from_the_readme():
    linked = {resolved for _, resolved in relative_links(README)}
    assert PAGES, 'docs/ has no pages'
    assert [p.name for p in PAGES if p.resolve() not in linked] == []


@pytest.mark.parametrize('path', PAGES, ids=lambda p: p.name)
def test_docs_pages_have_a_title_and_sections(path):
    lines = path.read_text().splitlines()
    assert lines[0].startswith('# ')
    assert any(line.startswith('### ') for line in lines)


def test_readme_is_short_and_names_the_test_command():
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    assert 'make test' in text
    assert 'make test' in (ROOT / '.ci' / 'run').read_text()
