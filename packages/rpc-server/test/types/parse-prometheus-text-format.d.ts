declare module "parse-prometheus-text-format" {
  /** Parses Prometheus text; throws on a malformed line. */
  export default function parsePrometheusTextFormat(text: string): Array<unknown>
}
