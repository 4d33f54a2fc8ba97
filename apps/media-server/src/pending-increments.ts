import type { Counter } from 'prom-client';

/** One label set of a {@link PendingIncrements}: its labels and what is not yet added to the counter. */
export interface PendingSeries<L extends string> {
  readonly labels: Record<L, string>;
  value: number;
}

/**
 * Increments of a labelled counter, summed in memory per label set and added
 * to the counter when it is read (a scrape runs its `collect`). prom-client
 * hashes and validates the labels on every `inc`, and a request makes
 * several; here a hit is one Map lookup. The key names the label set.
 */
export class PendingIncrements<L extends string> {
  readonly #series = new Map<string, PendingSeries<L>>();

  /** Adds `value` to the series `key`; returns its labels (one object per series, reusable). */
  add(key: string, labels: Record<L, string>, value: number): Record<L, string> {
    const series = this.seriesOf(key, labels);
    series.value += value;
    return series.labels;
  }

  /** The series `key` (made with `labels` the first time): a caller that keeps it adds to `value` itself. */
  seriesOf(key: string, labels: Record<L, string>): PendingSeries<L> {
    let series = this.#series.get(key);
    if (series === undefined) this.#series.set(key, (series = { labels, value: 0 }));
    return series;
  }

  flushInto(counter: Counter<L>): void {
    for (const series of this.#series.values()) {
      if (series.value === 0) continue;
      counter.inc(series.labels, series.value);
      series.value = 0;
    }
  }
}

/** The pending series of one route template: its bytes, and its requests by method and status. */
export class RouteSeries {
  readonly route: string;
  readonly bytesIn: PendingSeries<'route'>;
  readonly bytesOut: PendingSeries<'route'>;
  readonly #requests: PendingIncrements<'method' | 'route' | 'status'>;
  /** Method → status → series. */
  readonly #byMethod = new Map<string, Map<number, PendingSeries<'method' | 'route' | 'status'>>>();

  constructor(route: string, requests: PendingIncrements<'method' | 'route' | 'status'>, bytesIn: PendingSeries<'route'>, bytesOut: PendingSeries<'route'>) {
    this.route = route;
    this.#requests = requests;
    this.bytesIn = bytesIn;
    this.bytesOut = bytesOut;
  }

  /** The request series of `method` and `status` on this route; built once per label set. */
  requestsOf(method: string, status: number): PendingSeries<'method' | 'route' | 'status'> {
    let byStatus = this.#byMethod.get(method);
    if (byStatus === undefined) this.#byMethod.set(method, (byStatus = new Map()));
    let series = byStatus.get(status);
    if (series === undefined) {
      const route = this.route;
      series = this.#requests.seriesOf(`${method} ${status} ${route}`, { method, route, status: String(status) });
      byStatus.set(status, series);
    }
    return series;
  }
}

/**
 * The series of every route template, found by Map lookups on the template
 * (the router's own string), the method and the numeric status: a request
 * builds no key string and no labels object. Bounded like the labels:
 * templates, seven methods and OTHER, statuses.
 */
export class RouteSeriesIndex {
  readonly #routes = new Map<string, RouteSeries>();
  readonly #requests: PendingIncrements<'method' | 'route' | 'status'>;
  readonly #bytesIn: PendingIncrements<'route'>;
  readonly #bytesOut: PendingIncrements<'route'>;

  constructor(requests: PendingIncrements<'method' | 'route' | 'status'>, bytesIn: PendingIncrements<'route'>, bytesOut: PendingIncrements<'route'>) {
    this.#requests = requests;
    this.#bytesIn = bytesIn;
    this.#bytesOut = bytesOut;
  }

  of(route: string): RouteSeries {
    let series = this.#routes.get(route);
    if (series === undefined) {
      series = new RouteSeries(route, this.#requests, this.#bytesIn.seriesOf(route, { route }), this.#bytesOut.seriesOf(route, { route }));
      this.#routes.set(route, series);
    }
    return series;
  }
}
