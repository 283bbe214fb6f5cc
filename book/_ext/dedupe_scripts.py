"""A Sphinx extension that drops duplicate <script> entries from each page.

Sphinx 7.4 writes some inline scripts twice (sphinx-doc/sphinx#13402, fixed in 8.2,
but Jupyter Book 1 holds Sphinx at 7.x); the second copy of sphinx-thebe's
`const THEBE_JS_URL` then throws "Identifier has already been declared" on every page.
"""


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        key = (js.filename or "", js.priority, tuple(sorted(js.attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique


def setup(app):
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
