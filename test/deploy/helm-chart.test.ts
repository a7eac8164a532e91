// The Helm chart (deploy/helm/earshot): `helm lint --strict` and `helm template` over the values
// combinations it supports, each rendered object validated against the Kubernetes, KEDA and
// prometheus-operator schemas (kubernetes-models), and bad values refused by values.schema.json.
// Helm is the repository's own copy (scripts/helm.ts builds it into .tools/bin when missing).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { ensureHelm } from '../../scripts/helm.ts';
import { projectRoot } from '../../src/paths.ts';

const chart = path.join(projectRoot, 'deploy', 'helm', 'earshot');

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

// Every kind the chart may render, with the schema that checks it.
const models: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'v1/Secret': Secret,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
};

let helm = '';

function runHelm(args: string[]): { status: number; stdout: string; stderr: string } {
  const run = spawnSync(helm, args, { encoding: 'utf8', cwd: projectRoot, timeout: 60_000 });
  if (run.error) throw run.error;
  return { status: run.status ?? 1, stdout: run.stdout, stderr: run.stderr };
}

const setArgs = (sets: string[]) => sets.flatMap((set) => ['--set', set]);

/** Renders the chart as `helm install stt` would in namespace speech, and validates every object. */
function render(sets: string[]): K8sObject[] {
  const run = runHelm(['template', 'stt', chart, '--namespace', 'speech', ...setArgs(sets)]);
  assert.equal(run.status, 0, `helm template ${sets.join(' ')} failed:\n${run.stderr}`);
  const objects = parseAllDocuments(run.stdout)
    .map((document) => {
      assert.equal(document.errors.length, 0, String(document.errors[0]));
      return document.toJS() as K8sObject | null;
    })
    .filter((object): object is K8sObject => object !== null);
  for (const object of objects) {
    const Model = models[`${object.apiVersion}/${object.kind}`];
    assert.ok(Model, `no schema for ${object.apiVersion} ${object.kind}`);
    assert.doesNotThrow(
      () => new Model(object as never).validate(),
      `${object.kind} ${object.metadata.name} (${sets.join(' ') || 'defaults'})`,
    );
    assert.equal(object.metadata.labels?.['app.kubernetes.io/instance'], 'stt');
  }
  return objects;
}

const kinds = (objects: K8sObject[]) => objects.map((object) => object.kind).sort();
function one(objects: K8sObject[], kind: string): K8sObject {
  const found = objects.filter((object) => object.kind === kind);
  assert.equal(found.length, 1, `expected one ${kind}, got ${found.length}`);
  return found[0] as K8sObject;
}

interface Container {
  name: string;
  command?: string[];
  image: string;
  env: { name: string; value?: string }[];
  resources: { limits?: Record<string, unknown>; requests?: Record<string, unknown> };
  volumeMounts: { name: string; mountPath: string }[];
  startupProbe: { httpGet: { path: string }; periodSeconds: number; failureThreshold: number };
  readinessProbe: { httpGet: { path: string } };
  livenessProbe: { httpGet: { path: string } };
  lifecycle?: { preStop: { exec?: { command: string[] }; sleep?: { seconds: number } } };
  securityContext: { readOnlyRootFilesystem: boolean; runAsNonRoot?: boolean };
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes: {
    name: string;
    emptyDir?: unknown;
    persistentVolumeClaim?: { claimName: string };
    secret?: { secretName: string };
  }[];
  terminationGracePeriodSeconds: number;
  securityContext: { runAsNonRoot: boolean; runAsUser: number };
  tolerations?: { key: string }[];
}

function podSpec(objects: K8sObject[]): PodSpec {
  return (one(objects, 'Deployment') as unknown as { spec: { template: { spec: PodSpec } } }).spec.template.spec;
}
function earshotContainer(objects: K8sObject[]): Container {
  return podSpec(objects).containers.find((container) => container.name === 'earshot') as Container;
}
function env(objects: K8sObject[]): Record<string, string | undefined> {
  return Object.fromEntries(earshotContainer(objects).env.map(({ name, value }) => [name, value]));
}

describe('Helm chart deploy/helm/earshot', { timeout: 20 * 60_000 }, () => {
  before(() => {
    const started = Date.now();
    helm = ensureHelm((line) => process.stderr.write(`# ${line}\n`));
    process.stderr.write(`# helm ready in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  });

  const combinations: Record<string, string[]> = {
    default: [],
    'autoscaling (KEDA)': ['autoscaling.enabled=true'],
    'autoscaling (HPA + prometheus-adapter)': ['autoscaling.enabled=true', 'autoscaling.mode=hpa'],
    GPU: ['gpu.enabled=true', 'gpu.imageTag=0.1.0-cuda'],
    'created secret': ['apiKeys.keys={sk-one,sk-two}'],
    'existing secret': ['apiKeys.existingSecret=stt-keys'],
    PVC: ['modelCache.type=pvc'],
    'existing PVC + seed from it': [
      'modelCache.type=pvc',
      'modelCache.pvc.existingClaim=models',
      'modelSeed.enabled=true',
      'modelSeed.fromClaim=seed',
    ],
    ServiceMonitor: ['metrics.serviceMonitor.enabled=true', 'apiKeys.keys={sk-one}'],
    everything: [
      'autoscaling.enabled=true',
      'gpu.enabled=true',
      'apiKeys.existingSecret=stt-keys',
      'modelCache.type=pvc',
      'metrics.serviceMonitor.enabled=true',
      'metrics.public=true',
      'modelSeed.enabled=true',
      'modelSeed.image.repository=registry.example/earshot-models',
      'lifecycle.useSleepAction=true',
      'earshot.env.EARSHOT_MAX_BATCH=4',
    ],
  };

  for (const [name, sets] of Object.entries(combinations)) {
    it(`lints strictly and renders valid objects: ${name}`, () => {
      const lint = runHelm(['lint', '--strict', chart, ...setArgs(sets)]);
      assert.equal(lint.status, 0, `helm lint --strict ${sets.join(' ')}:\n${lint.stdout}${lint.stderr}`);
      assert.ok(render(sets).length >= 4);
    });
  }

  it('defaults: one non-root replica, probes on /health and /ready, a drain that fits the grace period', () => {
    const objects = render([]);
    assert.deepEqual(kinds(objects), ['Deployment', 'PodDisruptionBudget', 'Service', 'ServiceAccount']);
    const deployment = one(objects, 'Deployment') as unknown as { spec: { replicas: number; strategy: unknown } };
    assert.equal(deployment.spec.replicas, 1);
    const container = earshotContainer(objects);
    assert.equal(container.image, 'earshot:0.1.0');
    assert.equal(container.startupProbe.httpGet.path, '/health');
    assert.equal(container.startupProbe.periodSeconds * container.startupProbe.failureThreshold, 600);
    assert.equal(container.readinessProbe.httpGet.path, '/ready');
    assert.equal(container.livenessProbe.httpGet.path, '/health');
    assert.deepEqual(container.lifecycle?.preStop.exec?.command, ['sleep', '10']);
    const spec = podSpec(objects);
    // preStop sleep 10 s + earshot's drain 30 s + 10 s margin.
    assert.equal(spec.terminationGracePeriodSeconds, 50);
    assert.equal(env(objects).EARSHOT_SHUTDOWN_GRACE_MS, '30000');
    assert.equal(spec.securityContext.runAsNonRoot, true);
    assert.equal(spec.securityContext.runAsUser, 10001);
    assert.equal(container.securityContext.readOnlyRootFilesystem, true);
    assert.deepEqual(
      container.volumeMounts.map((mount) => mount.mountPath),
      ['/tmp', '/var/lib/earshot'],
    );
    assert.equal(env(objects).EARSHOT_TMP_DIR, '/tmp');
    assert.equal(env(objects).EARSHOT_MODELS_DIR, '/var/lib/earshot/models');
    assert.equal(env(objects).EARSHOT_HUB_CACHE_DIR, '/var/lib/earshot/hub-cache');
    assert.equal(env(objects).EARSHOT_API_KEY_FILE, undefined);
    assert.equal(env(objects).EARSHOT_DEVICE, 'cpu');
    assert.ok(spec.volumes.find((volume) => volume.name === 'model-cache')?.emptyDir);
  });

  it('a longer drain lengthens the termination grace period', () => {
    const objects = render(['earshot.shutdownGraceSeconds=600', 'lifecycle.preStopSleepSeconds=5']);
    assert.equal(podSpec(objects).terminationGracePeriodSeconds, 615);
    assert.equal(env(objects).EARSHOT_SHUTDOWN_GRACE_MS, '600000');
    assert.equal(podSpec(render(['terminationGracePeriodSeconds=90'])).terminationGracePeriodSeconds, 90);
  });

  it('KEDA: a ScaledObject on jobs waiting + running per replica; the Deployment leaves replicas to it', () => {
    const objects = render(['autoscaling.enabled=true', 'autoscaling.maxReplicas=8']);
    assert.deepEqual(kinds(objects), [
      'Deployment',
      'PodDisruptionBudget',
      'ScaledObject',
      'Service',
      'ServiceAccount',
    ]);
    assert.equal((one(objects, 'Deployment') as unknown as { spec: { replicas?: number } }).spec.replicas, undefined);
    const scaled = one(objects, 'ScaledObject') as unknown as {
      spec: {
        scaleTargetRef: { name: string };
        minReplicaCount: number;
        maxReplicaCount: number;
        advanced: {
          horizontalPodAutoscalerConfig: { behavior: { scaleDown: { stabilizationWindowSeconds: number } } };
        };
        triggers: { type: string; metricType: string; metadata: Record<string, string> }[];
      };
    };
    assert.equal(scaled.spec.scaleTargetRef.name, 'stt-earshot');
    assert.equal(scaled.spec.minReplicaCount, 1);
    assert.equal(scaled.spec.maxReplicaCount, 8);
    assert.equal(scaled.spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.stabilizationWindowSeconds, 300);
    const [trigger] = scaled.spec.triggers;
    assert.equal(trigger?.type, 'prometheus');
    assert.equal(trigger?.metricType, 'AverageValue');
    assert.equal(
      trigger?.metadata.query,
      'sum(avg_over_time(earshot_queue_depth{namespace="speech",service="stt-earshot"}[1m])) + ' +
        'sum(avg_over_time(earshot_jobs_in_flight{namespace="speech",service="stt-earshot"}[1m]))',
    );
    // One job per engine worker: EARSHOT_WORKERS_PER_MODEL (2) unless set.
    assert.equal(trigger?.metadata.threshold, '2');
    const set = one(
      render(['autoscaling.enabled=true', 'earshot.workersPerModel=1']),
      'ScaledObject',
    ) as unknown as typeof scaled;
    assert.equal(set.spec.triggers[0]?.metadata.threshold, '1');
    const explicit = one(
      render(['autoscaling.enabled=true', 'autoscaling.targetJobsPerReplica=3.5']),
      'ScaledObject',
    ) as unknown as typeof scaled;
    assert.equal(explicit.spec.triggers[0]?.metadata.threshold, '3.5');
  });

  it('HPA alternative: autoscaling/v2 on the external metric prometheus-adapter serves', () => {
    const objects = render(['autoscaling.enabled=true', 'autoscaling.mode=hpa']);
    assert.ok(!kinds(objects).includes('ScaledObject'));
    const hpa = one(objects, 'HorizontalPodAutoscaler') as unknown as {
      spec: { metrics: { external: { metric: { name: string; selector: unknown }; target: unknown } }[] };
    };
    assert.deepEqual(hpa.spec.metrics[0]?.external.metric, {
      name: 'earshot_jobs',
      selector: { matchLabels: { namespace: 'speech', service: 'stt-earshot' } },
    });
    assert.deepEqual(hpa.spec.metrics[0]?.external.target, { type: 'AverageValue', averageValue: '2' });
  });

  it('GPU: a GPU per pod, CUDA image, cuda + float16, the GPU taint tolerated', () => {
    const objects = render(['gpu.enabled=true', 'gpu.imageTag=0.1.0-cuda']);
    const container = earshotContainer(objects);
    assert.equal(container.image, 'earshot:0.1.0-cuda');
    assert.equal(container.resources.limits?.['nvidia.com/gpu'], 1);
    assert.equal(container.resources.limits?.memory, '4Gi');
    assert.equal(env(objects).EARSHOT_DEVICE, 'cuda');
    assert.equal(env(objects).EARSHOT_COMPUTE_TYPE, 'float16');
    assert.deepEqual(
      podSpec(objects).tolerations?.map((toleration) => toleration.key),
      ['nvidia.com/gpu'],
    );
  });

  it('API keys: a created Secret or an existing one, mounted as EARSHOT_API_KEY_FILE', () => {
    const created = render(['apiKeys.keys={sk-one,sk-two}']);
    const secret = one(created, 'Secret') as unknown as { metadata: { name: string }; data: Record<string, string> };
    assert.equal(secret.metadata.name, 'stt-earshot-api-keys');
    assert.equal(Buffer.from(secret.data.keys ?? '', 'base64').toString(), 'sk-one\nsk-two\n');
    assert.equal(Buffer.from(secret.data['scrape-key'] ?? '', 'base64').toString(), 'sk-one');
    assert.equal(env(created).EARSHOT_API_KEY_FILE, '/etc/earshot/keys/keys');
    assert.ok(one(created, 'Deployment').spec !== undefined);

    const existing = render(['apiKeys.existingSecret=stt-keys', 'apiKeys.fileKey=api-keys.txt']);
    assert.ok(!kinds(existing).includes('Secret'));
    assert.equal(env(existing).EARSHOT_API_KEY_FILE, '/etc/earshot/keys/api-keys.txt');
    assert.equal(
      podSpec(existing).volumes.find((volume) => volume.name === 'api-keys')?.secret?.secretName,
      'stt-keys',
    );
  });

  it('model cache: a created or an existing PVC, and a seeding initContainer', () => {
    const created = render(['modelCache.type=pvc', 'modelCache.pvc.size=50Gi']);
    const claim = one(created, 'PersistentVolumeClaim') as unknown as {
      metadata: { name: string; annotations: Record<string, string> };
    };
    assert.equal(claim.metadata.name, 'stt-earshot-models');
    assert.equal(claim.metadata.annotations['helm.sh/resource-policy'], 'keep');
    const volume = (objects: K8sObject[]) => podSpec(objects).volumes.find((v) => v.name === 'model-cache');
    assert.equal(volume(created)?.persistentVolumeClaim?.claimName, 'stt-earshot-models');

    const seeded = render([
      'modelCache.type=pvc',
      'modelCache.pvc.existingClaim=models',
      'modelSeed.enabled=true',
      'modelSeed.fromClaim=seed',
    ]);
    assert.ok(!kinds(seeded).includes('PersistentVolumeClaim'));
    assert.equal(volume(seeded)?.persistentVolumeClaim?.claimName, 'models');
    const init = podSpec(seeded).initContainers?.[0];
    assert.equal(init?.name, 'seed-models');
    assert.equal(init?.image, 'earshot:0.1.0');
    assert.deepEqual(
      init?.volumeMounts.map((mount) => mount.mountPath),
      ['/var/lib/earshot', '/seed'],
    );
    assert.equal(
      podSpec(seeded).volumes.find((v) => v.name === 'model-seed')?.persistentVolumeClaim?.claimName,
      'seed',
    );
  });

  it('the seed initContainer copies models and hub cache entries, keeping those already there', () => {
    const init = podSpec(render(['modelSeed.enabled=true', 'modelSeed.image.repository=seed'])).initContainers?.[0];
    const script = init?.command?.[2];
    assert.ok(script);
    const scratch = mkdtempSync(path.join(os.tmpdir(), 'earshot-seed-'));
    try {
      const from = path.join(scratch, 'seed');
      const to = path.join(scratch, 'cache');
      for (const file of ['models/small/model.bin', 'models/small/config.json', 'hub-cache/models--o--n/x']) {
        mkdirSync(path.dirname(path.join(from, file)), { recursive: true });
        writeFileSync(path.join(from, file), 'new');
      }
      mkdirSync(path.join(to, 'models', 'kept'), { recursive: true });
      mkdirSync(path.join(from, 'models', 'kept'), { recursive: true });
      writeFileSync(path.join(to, 'models', 'kept', 'model.bin'), 'old');
      writeFileSync(path.join(from, 'models', 'kept', 'model.bin'), 'new');
      const run = spawnSync('sh', ['-c', script], {
        env: { PATH: process.env.PATH, SEED_FROM: from, SEED_TO: to },
        encoding: 'utf8',
      });
      assert.equal(run.status, 0, run.stderr);
      assert.equal(readFileSync(path.join(to, 'models', 'small', 'model.bin'), 'utf8'), 'new');
      assert.equal(readFileSync(path.join(to, 'hub-cache', 'models--o--n', 'x'), 'utf8'), 'new');
      assert.equal(readFileSync(path.join(to, 'models', 'kept', 'model.bin'), 'utf8'), 'old');
      assert.deepEqual(readdirSync(path.join(to, 'models')).sort(), ['kept', 'small']);
      // Run again (a pod restarted): nothing changes, nothing fails.
      assert.equal(
        spawnSync('sh', ['-c', script], { env: { PATH: process.env.PATH, SEED_FROM: from, SEED_TO: to } }).status,
        0,
      );
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  it('the prometheus-adapter example serves the query the ScaledObject sends', () => {
    const example = parseYaml(readFileSync(path.join(chart, 'examples', 'prometheus-adapter-values.yaml'), 'utf8')) as {
      rules: { external: { name: { as: string }; metricsQuery: string }[] };
    };
    const rule = example.rules.external[0];
    assert.equal(rule?.name.as, 'earshot_jobs');
    const scaled = one(render(['autoscaling.enabled=true']), 'ScaledObject') as unknown as {
      spec: { triggers: { metadata: { query: string } }[] };
    };
    // prometheus-adapter puts the HPA's selector {namespace, service} into <<.LabelMatchers>>.
    const adapterQuery = rule?.metricsQuery.replaceAll(
      '<<.LabelMatchers>>',
      'namespace="speech",service="stt-earshot"',
    );
    assert.equal(adapterQuery, scaled.spec.triggers[0]?.metadata.query);
  });

  it('ServiceMonitor: sends a key when /metrics needs one, none when it is public', () => {
    const keyed = one(
      render(['metrics.serviceMonitor.enabled=true', 'apiKeys.keys={sk-one}']),
      'ServiceMonitor',
    ) as unknown as {
      spec: {
        endpoints: { port: string; path: string; authorization?: { credentials: { name: string; key: string } } }[];
      };
    };
    assert.equal(keyed.spec.endpoints[0]?.path, '/metrics');
    assert.deepEqual(keyed.spec.endpoints[0]?.authorization?.credentials, {
      name: 'stt-earshot-api-keys',
      key: 'scrape-key',
    });
    const open = render(['metrics.serviceMonitor.enabled=true', 'apiKeys.keys={sk-one}', 'metrics.public=true']);
    assert.equal((one(open, 'ServiceMonitor') as unknown as typeof keyed).spec.endpoints[0]?.authorization, undefined);
    assert.equal(env(open).EARSHOT_PUBLIC_METRICS, 'true');
  });

  const refused: Record<string, string[]> = {
    'a misspelt key': ['autoscalling.enabled=true'],
    'no workers': ['earshot.workersPerModel=0'],
    'an unknown autoscaling mode': ['autoscaling.mode=cpu'],
    'an unknown device': ['earshot.device=tpu'],
    'a variable the chart owns': ['earshot.env.EARSHOT_MODELS_DIR=/x'],
    'health behind keys (the probes need it)': ['earshot.env.EARSHOT_PUBLIC_HEALTH=false'],
    'a variable that is not earshot’s': ['earshot.env.LD_PRELOAD=/x'],
    'a memory limit that is not a quantity': ['resources.limits.memory=lots'],
    'no jobs per replica': ['autoscaling.targetJobsPerReplica=0'],
    'a seed with no source': ['modelSeed.enabled=true'],
    'scaling to zero': ['autoscaling.minReplicas=0'],
  };
  for (const [name, sets] of Object.entries(refused)) {
    it(`refuses at install: ${name}`, () => {
      const run = runHelm(['template', 'stt', chart, ...setArgs(sets)]);
      assert.notEqual(run.status, 0, `accepted ${sets.join(' ')}`);
      assert.match(run.stderr, /values don't meet the specifications of the schema/);
    });
  }
});
