/**
 * The web console's files, all served from this machine (no CDN, no network
 * at run time): the page itself from web/ in the package, the byte-size
 * formatter, the ages and the counts in words the CLI uses (`/js/format-bytes.js`,
 * `/js/format-time.js` and `/js/plural.js`, the built common/ files: one formatter,
 * so the page and the CLI show a quota, "3m 12s" or "1 item" alike), Leaflet
 * from its npm package, and the base map -- Natural Earth's 1:110m country
 * outlines from world-atlas, converted from TopoJSON to GeoJSON with topojson-client
 * once, on first request, and drawn by Leaflet as vectors.
 */
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FeatureCollection, MultiPolygon, Polygon, Position } from 'geojson'
import type { Topology } from 'topojson-specification'

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.png': 'image/png',
  '.json': 'application/json',
}

/** The package's root (the folder with package.json): two levels above cli/web/, three above dist/cli/web/. */
export function packageRoot(from = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir)
    if (up === dir) throw new Error(`no package.json above ${from}`)
    dir = up
  }
  return dir
}

export interface Asset {
  type: string
  body: Buffer
}

const require = createRequire(import.meta.url)

export class Assets {
  private readonly cache = new Map<string, Asset>()
  private readonly web: string
  /** The built common/ modules the page imports as they are (no imports of their own): served path → file. */
  private readonly shared: ReadonlyMap<string, string>
  private readonly leaflet: string

  constructor(root = packageRoot()) {
    this.web = join(root, 'web')
    this.shared = new Map(
      ['format-bytes.js', 'format-time.js', 'plural.js'].map((name) => [`/js/${name}`, join(root, 'dist', 'common', name)]),
    )
    this.leaflet = join(dirname(require.resolve('leaflet/package.json')), 'dist')
  }

  /** The file served at `path`, or undefined when there is none. */
  async get(path: string): Promise<Asset | undefined> {
    const file = this.fileFor(path)
    if (file === undefined) return undefined
    const cached = this.cache.get(path)
    if (cached) return cached
    let asset: Asset
    try {
      asset = file === WORLD ? { type: TYPES['.json'] as string, body: await worldGeoJson() } : await readAsset(file)
    } catch {
      return undefined
    }
    this.cache.set(path, asset)
    return asset
  }

  private fileFor(path: string): string | undefined {
    if (path === '/' || path === '/index.html') return join(this.web, 'index.html')
    if (path === '/world.geojson') return WORLD
    const shared = this.shared.get(path)
    if (shared !== undefined) return shared
    let m = /^\/(app\.css|js\/[a-z-]+\.js)$/.exec(path)
    if (m) return join(this.web, m[1] as string)
    m = /^\/vendor\/(leaflet\.js|leaflet\.css|images\/[a-z0-9-]+\.png)$/.exec(path)
    if (m) return join(this.leaflet, m[1] as string)
    return undefined
  }
}

const WORLD = '\0world'

async function readAsset(file: string): Promise<Asset> {
  return { type: TYPES[extname(file)] as string, body: await readFile(file) }
}

/**
 * A ring that crosses the antimeridian and comes back (Russia's Chukotka, Fiji) made continuous: its points past the line
 * go on beyond ±180° rather than jump to the other side. Drawn flat as it was, such a ring went the whole way round the
 * world and back, and the map showed a band of land across every ocean between 65° and 69° north. A ring that crosses
 * once goes round a pole (Antarctica) and is already right on a flat map: it stays as it is.
 */
export function unwrapRing(ring: Position[]): Position[] {
  const steps = ring.map((p, i) => (i === 0 ? 0 : (p[0] as number) - ((ring[i - 1] as Position)[0] as number)))
  if (steps.filter((step) => Math.abs(step) > 180).length % 2 === 1) return ring
  let shift = 0
  return ring.map((p, i) => {
    const step = steps[i] as number
    if (step > 180) shift -= 360
    else if (step < -180) shift += 360
    return [(p[0] as number) + shift, ...p.slice(1)]
  })
}

/** Natural Earth 1:110m countries as GeoJSON (light enough to load and draw at once), coordinates rounded to 3 decimals. */
async function worldGeoJson(): Promise<Buffer> {
  const topology = JSON.parse(await readFile(require.resolve('world-atlas/countries-110m.json'), 'utf8')) as Topology
  // topojson-client is loaded on first use: the map's data is built once per server, not at every CLI start-up.
  const { feature } = await import('topojson-client')
  const countries = feature(topology, topology.objects['countries'] as Parameters<typeof feature>[1]) as FeatureCollection<
    Polygon | MultiPolygon
  >
  for (const { geometry: g } of countries.features) {
    // Every country is a polygon or several.
    if (g.type === 'Polygon') g.coordinates = g.coordinates.map(unwrapRing)
    else g.coordinates = g.coordinates.map((polygon) => polygon.map(unwrapRing))
  }
  return Buffer.from(JSON.stringify(countries, (_k, v: unknown) => (typeof v === 'number' ? Math.round(v * 1000) / 1000 : v)))
}
