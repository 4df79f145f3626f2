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

/** Natural Earth 1:110m countries as GeoJSON (light enough to load and draw at once), coordinates rounded to 3 decimals. */
async function worldGeoJson(): Promise<Buffer> {
  const topology = JSON.parse(await readFile(require.resolve('world-atlas/countries-110m.json'), 'utf8')) as Topology
  // topojson-client is loaded on first use: the map's data is built once per server, not at every CLI start-up.
  const { feature } = await import('topojson-client')
  const countries = feature(topology, topology.objects['countries'] as Parameters<typeof feature>[1])
  return Buffer.from(JSON.stringify(countries, (_k, v: unknown) => (typeof v === 'number' ? Math.round(v * 1000) / 1000 : v)))
}
