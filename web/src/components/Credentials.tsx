// A device's MQTT credentials, shown once after creation or rotation, with copy buttons.
import { useState } from "react";
import type { MqttCredentials } from "../api/devices";

async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Fallback for browsers without the async clipboard (or without permission).
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand("copy");
    } catch {
      ok = false;
    }
    area.remove();
    return ok;
  }
}

export function CopyButton({ text, label }: { text: string; label: string }) {
  const [state, setState] = useState<"idle" | "copied" | "failed">("idle");
  const onClick = async () => {
    const ok = await copyText(text);
    setState(ok ? "copied" : "failed");
    window.setTimeout(() => setState("idle"), 2000);
  };
  return (
    <button type="button" className="btn btn-secondary btn-sm copy-btn" aria-label={`Copy ${label}`} onClick={() => void onClick()}>
      {state === "copied" ? "Copied ✓" : state === "failed" ? "Select and copy" : "Copy"}
    </button>
  );
}

const ROWS: { key: keyof MqttCredentials; label: string }[] = [
  { key: "username", label: "Username" },
  { key: "password", label: "Password" },
  { key: "client_id", label: "Client ID" },
  { key: "topic", label: "Topic" },
];

export function CredentialsPanel({ mqtt }: { mqtt: MqttCredentials }) {
  return (
    <div className="credentials" data-testid="mqtt-credentials">
      <div className="notice notice-warning" role="status">
        <div className="notice-body">
          <strong className="notice-title">Copy these credentials now: they are shown only once</strong>
          <div>FactoryOps keeps only a hash of the password. If it is lost, rotate the credentials to issue a new one.</div>
        </div>
      </div>
      <dl className="cred-list">
        {ROWS.map(({ key, label }) => (
          <div key={key} className="cred-row">
            <dt>{label}</dt>
            <dd>
              <code className={key === "password" ? "cred-secret" : undefined} data-testid={`mqtt-${key}`}>
                {mqtt[key]}
              </code>
              <CopyButton text={mqtt[key]} label={label.toLowerCase()} />
            </dd>
          </div>
        ))}
      </dl>
      <p className="muted small">
        Connect with MQTT 5 (or 3.1.1) using these values and publish JSON such as{" "}
        <code>{'{"power_kw": 41.2, "voltage_l1": 229.8}'}</code> to the topic at QoS 1.
      </p>
    </div>
  );
}
