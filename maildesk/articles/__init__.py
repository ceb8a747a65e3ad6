"""The portal's help articles (issue 16): Markdown files in a directory
that ops edit (library.py reads it), rendered to safe HTML (render.py) and
searched (search.py). The pages are web/portal/help_page.py."""
