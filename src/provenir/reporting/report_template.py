"""The HTML template of the run report (Jinja2, autoescaped: every value is escaped on output).

Kept as a Python string so it ships inside the package without package-data rules. The page
loads nothing: styles are inline, images are ``data:`` URIs, and the Content-Security-Policy
forbids any other source (and every script), so even a value that slipped through escaping
could neither run nor phone home.

``REPORT_BODY`` is the content (every section, no page chrome): the standalone report wraps it in
``REPORT_TEMPLATE``, and the web console (:mod:`provenir.api.console`) shows the same sections
inside its own page, so both state the same facts in the same words.
"""

#: The report's styles (inline in the standalone file; a stylesheet of its own in the console).
REPORT_CSS = """body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1100px;
       padding: 0 1rem; color: #1f2328; line-height: 1.45; }
h1 { margin-bottom: .2rem; } h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0; font-size: .92rem; }
th, td { border: 1px solid #d0d7de; padding: .25rem .6rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .hash { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .85rem; word-break: break-all; }
.badge { display: inline-block; padding: .1rem .5rem; border-radius: .8rem; font-weight: 600; font-size: .85rem; }
.ok { background: #dafbe1; color: #116329; } .bad { background: #ffebe9; color: #a40e26; }
.warn { background: #fff8c5; color: #7d4e00; } .muted { color: #656d76; }
img.plot { max-width: 100%; display: block; margin: .5rem 0; }
pre { background: #f6f8fa; padding: .8rem; overflow-x: auto; font-size: .82rem; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: .5rem 1.5rem; }
"""

REPORT_BODY = """<h1>{{ m.name }}</h1>
<div class="muted">run <code>{{ m.run_id }}</code> · {{ m.algorithm }} on {{ m.backend }} · status
  <span class="badge {{ 'ok' if m.status == 'completed' else 'bad' }}">{{ m.status }}</span> ·
  verification <span class="badge {{ 'ok' if v.ok else 'bad' }}">{{ 'verified' if v.ok else 'FAILED' }}</span></div>
{% if not v.ok %}<p class="badge bad">This run does not verify: {{ v.problems | join('; ') }}. Treat every number below as untrusted.</p>{% endif %}
{% if m.error %}<p class="badge bad">error: {{ m.error }}</p>{% endif %}

<h2 id="summary">Summary</h2>
<table>
{% for key, value in summary %}<tr><th>{{ key }}</th><td>{{ value }}</td></tr>
{% endfor %}</table>

<h2 id="verification">Verification</h2>
<table>
<tr><th>manifest hash matches content</th><td>{{ yes_no(v.hash_ok) }}</td></tr>
<tr><th>file is Provenir's exact serialisation</th><td>{{ yes_no(v.canonical_ok) }}</td></tr>
<tr><th>signature</th><td>{{ v.signature }}{% if v.signer_fingerprint %} (key fingerprint <code>{{ v.signer_fingerprint }}</code>){% endif %}
  {% if v.signature == 'valid' and v.signer_trusted %}<span class="muted">— by a key the signer policy trusts</span>{% elif v.signature == 'valid' %}<span class="muted">— checked with the key embedded in the manifest: proves integrity, not who signed; pass --public-key or --trusted-keys to prove origin</span>{% endif %}</td></tr>
<tr><th>output files match their hashes</th><td>{{ yes_no(v.outputs_ok) }}</td></tr>
</table>
{% if v.problems %}<ul>{% for p in v.problems %}<li class="bad">{{ p }}</li>{% endfor %}</ul>{% endif %}

<h2 id="hashes">Hashes</h2>
<table>
{% for key, value in hashes %}<tr><th>{{ key }}</th><td class="hash">{{ value }}</td></tr>
{% endfor %}</table>
{% if outputs %}<details><summary>{{ outputs | length }} output files (SHA-256)</summary>
<table><tr><th>file</th><th>sha256</th></tr>
{% for path, digest in outputs %}<tr><td><code>{{ path }}</code></td><td class="hash">{{ digest }}</td></tr>
{% endfor %}</table></details>{% endif %}

<h2 id="inputs">Inputs</h2>
{% if inputs.missing %}<p class="muted">Inputs (model files, chat template, data sources, exact rows): {{ inputs.missing }}.</p>
{% else %}<table>
{% for key, value in inputs.rows %}<tr><th>{{ key }}</th><td class="hash">{{ value }}</td></tr>
{% endfor %}</table>
{% if inputs.sources %}<h3>Dataset sources</h3>
<table><tr><th>role</th><th>uri</th><th>selector</th><th>weight</th><th>sha256</th><th>rows</th><th>rows used</th></tr>
{% for s in inputs.sources %}<tr><td>{{ s.role }}</td><td><code>{{ s.uri }}</code></td><td>{{ s.selector }}</td><td class="num">{{ s.weight }}</td><td class="hash">{{ s.sha256 }}</td><td class="num">{{ s.rows }}</td><td class="num">{{ s.rows_used }}</td></tr>
{% endfor %}</table>{% endif %}
{% if inputs.notes %}<ul>{% for n in inputs.notes %}<li class="muted">not pinned: {{ n }}</li>{% endfor %}</ul>{% endif %}
{% endif %}

<h2 id="training">Training</h2>
{% if training_plots %}<div class="grid">
{% for title, uri in training_plots %}<img class="plot" alt="{{ title }}" src="{{ uri }}">
{% endfor %}</div>{% else %}<p class="muted">No loss or learning-rate entries in train_log.jsonl{% if m.backend == 'stub' %} (the stub backend does not train){% endif %}.</p>{% endif %}
{% if train_metrics %}<table><tr><th>metric</th><th>value</th></tr>
{% for key, value in train_metrics %}<tr><td>{{ key }}</td><td class="num">{{ value }}</td></tr>
{% endfor %}</table>{% endif %}

<h2 id="eval-during-training">Evaluation during training</h2>
{% if eval_curve %}<img class="plot" alt="evaluation metrics per checkpoint with confidence bands" src="{{ eval_curve }}">
{% else %}<p class="muted">No <code>eval/&lt;metric&gt;</code> entries were logged during training (attach an EvalCallback to log them).</p>{% endif %}

<h2 id="final-metrics">Final metrics</h2>
{% if final %}<p>Computed on: {{ final.computed_on }}.</p>
<table>
<tr><th>metric</th><th>mean</th><th>{{ final.pct }}% CI</th><th>interval</th><th>n</th><th>corpus</th></tr>
{% for row in final.rows %}<tr><td>{{ row.name }}</td><td class="num">{{ row.mean }}</td><td class="num">{{ row.ci }}</td><td>{{ row.interval }}</td><td class="num">{{ row.n }}</td><td class="num">{{ row.corpus }}</td></tr>
{% endfor %}</table>
{% if final.chart %}<img class="plot" alt="final metrics with confidence intervals" src="{{ final.chart }}">{% endif %}
<p class="muted">Source: {{ final.source }}.</p>
{% else %}<p class="muted">This run has not been evaluated (<code>provenir eval</code> writes eval.json).</p>{% endif %}

<h2 id="regression-gate">Regression gate</h2>
{% if gate %}<p>Against baseline <code>{{ gate.baseline_id }}</code> ({{ gate.baseline_name }}):
{% if gate.decision %}<span class="badge {{ 'ok' if gate.decision.passed else 'bad' }}">{{ 'PASSED' if gate.decision.passed else 'TRIPPED' }}</span>
 <span class="muted">tolerance {{ gate.decision.tolerance }} {{ gate.decision.mode }}, alpha {{ gate.decision.alpha }}</span></p>
<p>{{ gate.decision.message() }}</p>
<table><tr><th>metric</th><th>baseline</th><th>this run</th><th>delta</th><th>delta CI</th><th>paired test</th><th>p</th><th>verdict</th></tr>
{% for row in gate.rows %}<tr><td>{{ row.name }}</td><td class="num">{{ row.baseline }}</td><td class="num">{{ row.new }}</td><td class="num">{{ row.delta }}</td><td class="num">{{ row.ci }}</td><td>{{ row.test }}</td><td class="num">{{ row.p }}</td><td><span class="badge {{ row.css }}">{{ row.verdict }}</span></td></tr>
{% endfor %}</table>
{% if gate.decision.note %}<p class="muted">{{ gate.decision.note }}</p>{% endif %}
{% else %}<span class="badge warn">not compared</span></p><p>{{ gate.reason }}</p>{% endif %}
{% else %}<p class="muted">No baseline given (<code>--baseline RUN</code>).</p>{% endif %}

<h2 id="lineage">Lineage</h2>
{% if lineage_svg %}<img class="plot" alt="provenance graph" src="{{ lineage_svg }}">
<table><tr><th>run</th><th>name</th><th>relation to parent</th><th>status</th><th>started</th></tr>
{% for depth, node in lineage_rows %}<tr><td><code>{{ '\u2003' * depth }}{{ node.short_id }}</code>{% if node.run_id == m.run_id %} <b>(this run)</b>{% endif %}</td>
<td>{{ node.name }}</td><td>{{ node.relation or '—' }}</td><td>{{ node.status }}</td><td>{{ node.timestamp[:19] }}</td></tr>
{% endfor %}</table>
{% else %}<p class="muted">No other runs share this run's provenance.</p>{% endif %}

<h2 id="data">Data</h2>
<table>
{% for key, value in data_rows %}<tr><th>{{ key }}</th><td>{{ value }}</td></tr>
{% endfor %}</table>
{% if scan_rows %}<h3>PII and secret scan</h3>
<table><tr><th>kind</th><th>type</th><th>findings</th></tr>
{% for kind, typ, count in scan_rows %}<tr><td>{{ kind }}</td><td>{{ typ }}</td><td class="num">{{ count }}</td></tr>
{% endfor %}</table>{% endif %}

<h2 id="environment">Environment</h2>
<table>
{% for key, value in env_rows %}<tr><th>{{ key }}</th><td>{{ value }}</td></tr>
{% endfor %}</table>

<h2 id="config">Configuration</h2>
<pre>{{ config_text }}</pre>
{% if notes %}<h2 id="notes">Notes</h2><ul>{% for n in notes %}<li>{{ n }}</li>{% endfor %}</ul>{% endif %}
<p class="muted">Generated by Provenir {{ version }} from the run's manifest, train_log.jsonl and eval.json; this file loads nothing from the network.</p>
"""

REPORT_TEMPLATE = (
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Provenir report: {{ m.name }} ({{ m.run_id[:8] }})</title>
<style>
"""
    + REPORT_CSS
    + """</style>
</head>
<body>
"""
    + REPORT_BODY
    + """</body>
</html>
"""
)
