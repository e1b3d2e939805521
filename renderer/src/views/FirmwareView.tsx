/**
 * Firmware images (docs/firmware.md): each stored image with its version, kinds, size, signer key
 * id, SHA-256 and the devices running or wanting it; import with a file picker (the manifest and
 * the image) or by dropping both files on the import bar (a `.json` file is the manifest). A refused image shows the host's reason in place (`hashMismatch`, `badSignature`, …)
 * and nothing is stored. Each image row has "Update device…": a device of the image's kinds, confirmed,
 * is updated to it (`firmwareUpdate`; a refusal shows in place); the "Updates" table polls
 * `firmwareJobs` every second while the view is open (FirmwareUpdates.tsx). "Roll out…" opens the
 * rollout form under the row, and the "Rollouts" table polls `rollouts` (RolloutsPanel.tsx).
 *
 * @example
 * <FirmwareView />
 */
import { Fragment, useCallback, useEffect, useRef, useState } from 'react';
import type {
  FirmwareImageView,
  FirmwareJobView,
  FirmwareRefusalCode,
  Results,
} from '../../../src/host/contract.js';
import { Empty, ErrorState, Loading } from '../components/States.js';
import { formatBytes, formatDateTime, formatDeviceList } from '../lib/format.js';
import { usePolling } from '../lib/hooks.js';
import { useClient } from '../store/use-live.js';
import { FINAL_STEPS, UpdateForm, UpdateJobs } from './FirmwareUpdates.js';
import { RolloutForm, Rollouts } from './RolloutsPanel.js';

type Outcome =
  | { readonly ok: true; readonly text: string }
  | { readonly ok: false; readonly code: string; readonly message: string };

/** Base64 of bytes, in slices (String.fromCharCode takes a bounded number of arguments). */
function toBase64(bytes: Uint8Array): string {
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000)
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

/**
 * Answers after which nothing was stored: the firmware layer's refusals (docs/firmware.md §3) and
 * the boundary's `badRequest`. Any other answer (a lost connection, a timeout) is not a refusal.
 */
const REFUSED: ReadonlySet<string> = new Set([
  'badRequest',
  'badManifest',
  'unsigned',
  'unknownKey',
  'badSignature',
  'unknownKind',
  'firmwareNotSupported',
  'tooLarge',
  'truncated',
  'sizeMismatch',
  'hashMismatch',
  'duplicateImage',
  'versionConflict',
  'downgrade',
  'writeFailed',
] satisfies readonly ('badRequest' | FirmwareRefusalCode)[]);

/** How often the "Updates" table asks for the jobs while the view is open. */
const JOBS_POLL_MS = 1_000;
/** Columns of the images table (the update form's row spans them). */
const IMAGE_COLUMNS = 9;

const short = (hex: string) => `${hex.slice(0, 12)}…`;

export function FirmwareView() {
  const client = useClient();
  const [list, setList] = useState<Results['firmwareList'] | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [manifestFile, setManifestFile] = useState<File | null>(null);
  const [imageFile, setImageFile] = useState<File | null>(null);
  const [allowDowngrade, setAllowDowngrade] = useState(false);
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState<Outcome | null>(null);
  const [dragging, setDragging] = useState(false);
  const [updating, setUpdating] = useState<string | null>(null);
  const [rollingOut, setRollingOut] = useState<string | null>(null);
  const [rolloutsAsked, setRolloutsAsked] = useState(0);
  const [jobs, setJobs] = useState<readonly FirmwareJobView[] | null>(null);
  const [jobsError, setJobsError] = useState<string | null>(null);
  const finished = useRef<Set<string> | null>(null);

  const pick = (files: readonly File[]) => {
    for (const f of files) {
      if (f.name.toLowerCase().endsWith('.json')) setManifestFile(f);
      else setImageFile(f);
    }
    setOutcome(null);
  };

  const load = useCallback(async () => {
    const r = await client.call('firmwareList', {});
    if (r.ok) {
      setList(r.value);
      setLoadError(null);
    } else setLoadError(`${r.error.code}: ${r.error.message}`);
  }, [client]);
  useEffect(() => {
    void load();
  }, [load]);

  const loadJobs = useCallback(async () => {
    const r = await client.call('firmwareJobs', {});
    if (!r.ok) {
      setJobsError(`${r.error.code}: ${r.error.message}`);
      return;
    }
    setJobs(r.value);
    setJobsError(null);
    // A job that ends changes what the images run on: list them again.
    const ended = new Set(r.value.filter((j) => FINAL_STEPS.has(j.step)).map((j) => j.transferId));
    const before = finished.current;
    finished.current = ended;
    if (before && [...ended].some((t) => !before.has(t))) void load();
  }, [client, load]);
  usePolling(async () => {
    await loadJobs();
    return JOBS_POLL_MS;
  }, [loadJobs]);

  const importImage = async () => {
    if (!manifestFile || !imageFile) return;
    setBusy(true);
    setOutcome(null);
    try {
      const manifest = await manifestFile.text();
      const image = toBase64(new Uint8Array(await imageFile.arrayBuffer()));
      const r = await client.call('firmwareImport', { manifest, image, allowDowngrade });
      if (r.ok) {
        const v = r.value.image;
        setOutcome({
          ok: true,
          text: r.value.created
            ? `Imported ${v.version} for ${v.kinds.join(', ')} (${short(v.sha256)})`
            : `${v.version} was stored already: nothing changed`,
        });
        await load();
      } else {
        setOutcome({ ok: false, code: r.error.code, message: r.error.message });
        // A lost connection or a timeout says nothing of what the host did: show what it holds.
        if (!REFUSED.has(r.error.code)) await load();
      }
    } catch (error) {
      setOutcome({ ok: false, code: 'unreadableFile', message: (error as Error).message });
    } finally {
      setBusy(false);
    }
  };

  if (list === null && loadError === null) return <Loading label="Asking the host…" />;
  if (list === null)
    return <ErrorState title="Could not list firmware images" message={loadError ?? ''} onRetry={load} />;

  return (
    <div className="view firmware">
      <p className="muted intro">
        Signed firmware images, stored by SHA-256 in the data folder. An image is accepted only with a
        manifest signed by a trusted key (the demo trusts the sample key in <code>assets/firmware</code>); the
        CLI does the same: <code>fleetvisor firmware import IMAGE</code> (with <code>--demo</code> for the
        demo fleet, which keeps its images apart).
      </p>
      <section
        aria-label="Import a firmware image"
        className={`toolbar firmware-drop${dragging ? ' on' : ''}`}
        data-testid="firmware-drop"
        style={dragging ? { outline: '2px dashed var(--accent, #2563eb)', outlineOffset: 4 } : undefined}
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          e.preventDefault();
          setDragging(false);
          pick(Array.from(e.dataTransfer.files));
        }}
      >
        <label>
          Manifest{' '}
          <input
            type="file"
            accept=".json,application/json"
            data-testid="firmware-manifest-file"
            onChange={(e) => {
              setManifestFile(e.target.files?.[0] ?? null);
              setOutcome(null);
            }}
          />
        </label>
        <label>
          Image{' '}
          <input
            type="file"
            data-testid="firmware-image-file"
            onChange={(e) => {
              setImageFile(e.target.files?.[0] ?? null);
              setOutcome(null);
            }}
          />
        </label>
        <label title="Accept a version older than one stored for the same kind (audited)">
          <input
            type="checkbox"
            checked={allowDowngrade}
            onChange={(e) => setAllowDowngrade(e.target.checked)}
          />{' '}
          allow downgrade
        </label>
        <button
          type="button"
          className="btn primary"
          disabled={!manifestFile || !imageFile || busy}
          onClick={() => void importImage()}
          data-testid="firmware-import"
        >
          {busy ? 'Importing…' : 'Import'}
        </button>
        <span className="muted small-text" data-testid="firmware-picked">
          {manifestFile || imageFile
            ? `${manifestFile?.name ?? 'no manifest'} + ${imageFile?.name ?? 'no image'}`
            : 'or drop the manifest and the image here'}
        </span>
      </section>
      {outcome ? (
        outcome.ok ? (
          <div className="banner ok" role="status" data-testid="firmware-imported">
            {outcome.text}
          </div>
        ) : (
          <div className="banner err" role="alert" data-testid="firmware-refusal">
            <span>
              <strong className="mono">{outcome.code}</strong>: {outcome.message}.{' '}
              {REFUSED.has(outcome.code)
                ? 'Nothing was stored.'
                : 'The list below is what the host holds now.'}
            </span>
          </div>
        )
      ) : null}
      {loadError ? <div className="banner err">{loadError}</div> : null}
      {list.images.length === 0 ? (
        <Empty title="No firmware image yet">
          Pick a manifest (<code>*.manifest.json</code>) and its image above, e.g.{' '}
          <code>assets/firmware/sample-1.1.0.bin</code>.
        </Empty>
      ) : (
        <table className="kv firmware-images" data-testid="firmware-table">
          <thead>
            <tr>
              <th>Version</th>
              <th>Kinds</th>
              <th className="num fw-col-size">Size</th>
              <th>Signer key</th>
              <th>SHA-256</th>
              <th>Running on</th>
              <th>Wanted by</th>
              <th className="fw-col-imported">Imported</th>
              <th className="fw-col-update">
                <span className="sr-only">Update</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {list.images.map((i) => (
              <Fragment key={i.sha256}>
                <ImageRow
                  image={i}
                  open={updating === i.sha256}
                  onToggle={() => {
                    setRollingOut(null);
                    setUpdating((u) => (u === i.sha256 ? null : i.sha256));
                  }}
                  rolloutOpen={rollingOut === i.sha256}
                  onRolloutToggle={() => {
                    setUpdating(null);
                    setRollingOut((u) => (u === i.sha256 ? null : i.sha256));
                  }}
                />
                {updating === i.sha256 ? (
                  <UpdateForm
                    image={i}
                    colSpan={IMAGE_COLUMNS}
                    onStarted={() => {
                      setUpdating(null);
                      void loadJobs();
                    }}
                    onClose={() => setUpdating(null)}
                  />
                ) : null}
                {rollingOut === i.sha256 ? (
                  <RolloutForm
                    image={i}
                    colSpan={IMAGE_COLUMNS}
                    onStarted={() => {
                      setRollingOut(null);
                      setRolloutsAsked((n) => n + 1);
                      void loadJobs();
                    }}
                    onClose={() => setRollingOut(null)}
                  />
                ) : null}
              </Fragment>
            ))}
          </tbody>
        </table>
      )}
      {list.unreadable.length > 0 ? (
        <div className="banner err">
          {list.unreadable.length} stored image row(s) do not parse: {list.unreadable[0]?.message}
        </div>
      ) : null}
      <Rollouts
        refresh={rolloutsAsked}
        onEnded={() => {
          void load();
          void loadJobs();
        }}
      />
      <UpdateJobs jobs={jobs} error={jobsError} onChanged={() => void loadJobs()} />
    </div>
  );
}

function ImageRow({
  image: i,
  open,
  onToggle,
  rolloutOpen,
  onRolloutToggle,
}: {
  readonly image: FirmwareImageView;
  readonly open: boolean;
  readonly onToggle: () => void;
  readonly rolloutOpen: boolean;
  readonly onRolloutToggle: () => void;
}) {
  return (
    <tr data-testid={`firmware-${i.version}`}>
      <td className="mono">
        {i.version}
        {i.hardwareRevision ? <span className="muted"> rev {i.hardwareRevision}</span> : null}
        {i.downgradeFrom ? <span className="muted"> (downgrade from {i.downgradeFrom})</span> : null}
      </td>
      <td>{i.kinds.join(', ')}</td>
      <td className="num">{formatBytes(i.size)}</td>
      <td className="mono" title={i.keyId}>
        {short(i.keyId)}
      </td>
      <td className="mono" title={i.sha256}>
        {short(i.sha256)}
      </td>
      <td title={i.runningOn.join(', ')}>{formatDeviceList(i.runningOn)}</td>
      <td title={i.wantedBy.join(', ')}>{formatDeviceList(i.wantedBy)}</td>
      <td>
        {formatDateTime(i.importedAt)} <span className="muted">by {i.importedBy}</span>
      </td>
      <td className="fw-col-update">
        <button
          type="button"
          className="btn small"
          aria-expanded={open}
          onClick={onToggle}
          data-testid="fw-update-open"
        >
          Update device…
        </button>{' '}
        <button
          type="button"
          className="btn small"
          aria-expanded={rolloutOpen}
          onClick={onRolloutToggle}
          data-testid="ro-open"
        >
          Roll out…
        </button>
      </td>
    </tr>
  );
}
