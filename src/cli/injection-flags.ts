// The flags `authproxy inject` and `authproxy injector` share: the injection settings file and the
// flags that override it, so the offline command and the webhook read them the same way.
import { loadSettings, type InjectSettings } from '../inject/settings.ts';

export const SETTINGS_OPTIONS = {
  config: { type: 'string' },
  image: { type: 'string' },
  'trust-domain': { type: 'string' },
  issuer: { type: 'string' },
  'policies-configmap': { type: 'string' },
  'legacy-sidecar': { type: 'boolean' },
} as const;

export interface SettingsValues {
  config?: string | undefined;
  image?: string | undefined;
  'trust-domain'?: string | undefined;
  issuer?: string | undefined;
  'policies-configmap'?: string | undefined;
  'legacy-sidecar'?: boolean | undefined;
}

/** The settings file named by --config (if any) with the flags applied over it. */
export function settingsFromFlags(values: SettingsValues): Promise<InjectSettings> {
  return loadSettings(values.config, {
    image: values.image, trustDomain: values['trust-domain'], issuer: values.issuer,
    policiesConfigMap: values['policies-configmap'], legacySidecar: values['legacy-sidecar'],
  });
}
