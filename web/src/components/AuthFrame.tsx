// The frame of the signed-out pages: a dark brand panel beside a form card.
import type { ReactNode } from "react";
import { BrandMark } from "./icons";

export function AuthFrame({ children, footer }: { children: ReactNode; footer?: ReactNode }) {
  return (
    <div className="auth-page">
      <div className="auth-brand">
        <div className="auth-brand-top">
          <BrandMark size={40} />
          <span className="auth-brand-name">FactoryOps</span>
        </div>
        <div className="auth-brand-copy">
          <h2>Industrial energy intelligence</h2>
          <p>Live telemetry, rules and alerts, analytics and reports — each factory sealed off from every other.</p>
        </div>
        <div className="auth-brand-foot">Open-source · self-hosted</div>
      </div>
      <div className="auth-main">
        <div className="auth-card">{children}</div>
        {footer && <div className="auth-footer">{footer}</div>}
      </div>
    </div>
  );
}
