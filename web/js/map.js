// The map (F1): Leaflet on a canvas renderer, so 1,000 phones stay cheap; Natural Earth outlines as the base layer
// (served by the console itself), or tiles when the console was started with --tiles. One dot and one accuracy circle
// per phone, the selected phone's track, and the replay marker that the time slider moves.
// M2: a phone that followed its account to another cloud has its own colour and says where it went beside its dot.
// F1: a dot painted on the canvas is no element a keyboard reaches: each has a button named after its phone, in the map
// after its controls, that Tab reaches and Enter or Space presses as a click on the dot does. The focused one is a ring
// over its dot, its label shown (the map pans to a dot out of view).
// In the system's dark mode the map is dark too (app.css: its sea, controls and labels, tiles inverted; here: the land and
// the track painted on the canvas), and it follows the setting when it changes.
import { dataState, h, lastFix, locatedAt } from './util.js'

const L = window.L

/**
 * Asked for less motion (the system's setting, prefers-reduced-motion): the map jumps where it goes -- no gliding pans
 * and zooms, no fades, no drift after a drag. Read when the page opens, as Leaflet reads its options.
 */
const still = window.matchMedia('(prefers-reduced-motion: reduce)').matches
const MOTION = { zoomAnimation: !still, fadeAnimation: !still, markerZoomAnimation: !still, inertia: !still }
/** How this page's own moves of the view go (a pan to a focused dot, the fit to a track): Leaflet's way, or at once. */
const MOVE = still ? { animate: false } : {}

const COLOURS = { online: '#1b7f3a', offline: '#666666', locationOff: '#a65300', moved: '#6a3d9a' }
/**
 * Each dot's ring: on the light land and sea its fill stands out (3:1 or more: the grey and the orange were 2.8:1 on the
 * light sea), on the dark land and sea the ring does.
 */
const RING = '#fff'
/**
 * What the canvas paints in each theme; the sea is the map's background (app.css). In dark mode the land is dark and the
 * track light: a dark navy track on the dark land would be as good as gone.
 */
const THEMES = {
  light: { land: { color: '#8a8f7a', fillColor: '#f2efe6' }, track: '#23395b' },
  dark: { land: { color: '#5d6673', fillColor: '#30363f' }, track: '#8ab4f8' },
}
const darkMode = window.matchMedia('(prefers-color-scheme: dark)')
const theme = () => THEMES[darkMode.matches ? 'dark' : 'light']
/** The key under the map, in the order of `colour`'s checks. */
const LEGEND = [
  ['moved', 'moved to another cloud (its label says where)'],
  ['locationOff', 'location off'],
  ['online', 'online'],
  ['offline', 'offline'],
]
/** Phones with a name shown beside their dot; with more, names show on hover. */
const LABELLED = 30
/**
 * Accuracy circles are drawn from this zoom on: below it a typical accuracy (tens of metres) is under a pixel, and a
 * thousand invisible circles would double what each redraw of the map costs.
 */
const CIRCLE_ZOOM = 12

/** M2: offline here because it took its account's migration notice (the list says so too: util.js dataState). */
const moved = (d) => !d.online && d.moved?.notice === 'delivered'

function colour(d) {
  if (moved(d)) return COLOURS.moved
  if (d.locationOffAt !== null) return COLOURS.locationOff
  return d.online ? COLOURS.online : COLOURS.offline
}

/**
 * The name beside a dot, with where it went when it followed a migration (M2), its lost mode when switched on, and
 * when the dot is at the fix a locate brought (F2), that it is, and its time.
 */
export function label(d) {
  const name = d.online || d.moved === null ? d.id : `${d.id} · ${dataState(d).text}`
  const lost = d.lostMode?.on ? `${name} · lost mode: “${d.lostMode.message}”, call ${d.lostMode.phone}` : name
  return d.located ? `${lost} · ${locatedAt(d.located)}` : lost
}

function legend() {
  const control = L.control({ position: 'bottomleft' })
  control.onAdd = () =>
    h(
      'ul',
      { class: 'map-legend', 'aria-label': 'Map key' },
      LEGEND.map(([key, text]) =>
        h('li', {}, h('span', { class: 'swatch', style: `background: ${COLOURS[key]}; border-color: ${RING}` }), text),
      ),
    )
  return control
}

/** Leaflet puts a string tooltip in as HTML: the label goes in as text. */
function labelElement(text) {
  const el = document.createElement('span')
  el.textContent = text
  return el
}

export class DeviceMap {
  constructor(el, onSelect) {
    // Leaflet's own padding: the canvas is 1.2 times the view, not twice (0.5), so each redraw paints a third of the pixels.
    this.renderer = L.canvas({ padding: 0.1 })
    this.map = L.map(el, { preferCanvas: true, renderer: this.renderer, worldCopyJump: true, minZoom: 2, ...MOTION }).setView([30, 0], 2)
    legend().addTo(this.map)
    this.onSelect = onSelect
    this.circles = L.layerGroup()
    this.map.on('zoomend', () => this.showCircles())
    this.dots = new Map()
    // One listener of each kind for every dot's button (a fleet's thousand buttons cost no listeners of their own).
    const keyOf = (e) => e.target.closest('.dot-key')?.dataset.device
    this.keys = h('div', {
      class: 'dot-keys',
      role: 'group',
      'aria-label': 'Phones on the map',
      onclick: (e) => keyOf(e) !== undefined && this.onSelect(keyOf(e)),
      onfocusin: (e) => keyOf(e) !== undefined && this.focusDot(keyOf(e)),
      onfocusout: (e) => keyOf(e) !== undefined && this.blurDot(keyOf(e)),
    })
    // A key pressed on a dot's button is the button's, not the map's (Leaflet takes Enter on the map as a click on it).
    L.DomEvent.disableClickPropagation(this.keys)
    L.DomEvent.on(this.keys, 'keydown keyup keypress', L.DomEvent.stopPropagation)
    this.map.getContainer().append(this.keys)
    this.focused = null
    this.map.on('move zoom', () => this.placeKey())
    this.fitted = false
    this.land = null
    this.track = null
    this.replay = null
    darkMode.addEventListener('change', () => this.restyle())
  }

  /** The system's theme changed: the land and the track take its colours (the rest is app.css's). */
  restyle() {
    const { land, track } = theme()
    this.land?.setStyle(land)
    this.track?.setStyle({ color: track })
  }

  async base(config) {
    if (config.tiles) {
      L.tileLayer(config.tiles, { maxZoom: 19, attribution: 'map tiles: see --tiles' }).addTo(this.map)
      return
    }
    const world = await (await fetch('/world.geojson')).json()
    this.land = L.geoJSON(world, {
      renderer: this.renderer,
      interactive: false,
      style: { ...theme().land, weight: 1, fillOpacity: 1 },
    }).addTo(this.map)
    this.land.bringToBack()
    this.map.attributionControl.addAttribution('Natural Earth')
  }

  /**
   * Draws or moves each phone's dot and accuracy circle, at its last heartbeat's fix or a newer one a locate brought. A
   * phone with neither (none yet, or the cloud cleared its last known position: a frozen account, A3) has no dot.
   */
  update(devices, total) {
    // New dots' buttons go into the page at once, after the loop.
    const keys = document.createDocumentFragment()
    for (const d of devices) {
      const fix = lastFix(d)
      if (!fix) {
        this.remove(d.id)
        continue
      }
      const at = [fix.lat, fix.lon]
      let dot = this.dots.get(d.id)
      if (!dot) {
        const circle = L.circle(at, { renderer: this.renderer, radius: fix.accuracy, weight: 1, fillOpacity: 0.12, interactive: false })
        // Smaller dots for a fleet, so a thousand phones stay apart at country scale.
        const radius = total > 200 ? 4 : 7
        const marker = L.circleMarker(at, { renderer: this.renderer, radius, weight: total > 200 ? 1 : 2, color: RING, fillOpacity: 1 })
        marker.bindTooltip(labelElement(d.id), { permanent: total <= LABELLED, direction: 'right', className: 'device-label' })
        marker.on('click', () => this.onSelect(d.id))
        const key = h('button', { type: 'button', class: 'dot-key', 'data-device': d.id, text: d.id })
        keys.append(key)
        dot = { marker, circle, key, label: d.id, permanent: total <= LABELLED }
        this.dots.set(d.id, dot)
        this.circles.addLayer(circle)
        marker.addTo(this.map)
      }
      dot.marker.setLatLng(at)
      if (this.focused === d.id) this.placeKey()
      if (dot.label !== label(d)) {
        dot.label = label(d)
        dot.marker.setTooltipContent(labelElement(dot.label))
      }
      dot.circle.setLatLng(at)
      dot.circle.setRadius(fix.accuracy)
      const fill = colour(d)
      if (dot.colour !== fill) {
        dot.colour = fill
        dot.marker.setStyle({ fillColor: fill })
        dot.circle.setStyle({ color: fill })
      }
    }
    this.keys.append(keys)
    if (!this.fitted && this.dots.size > 0) {
      this.fitted = true
      const bounds = L.latLngBounds([...this.dots.values()].map((x) => x.marker.getLatLng()))
      // Far enough out to see the country around the phones; a click on one zooms in.
      this.map.fitBounds(bounds.pad(0.3), { maxZoom: 6, ...MOVE })
    }
  }

  /** Takes a phone's dot and accuracy circle off the map (it was removed, or where it is is no longer known). */
  remove(id) {
    const dot = this.dots.get(id)
    if (!dot) return
    dot.marker.remove()
    dot.key.remove()
    this.circles.removeLayer(dot.circle)
    this.dots.delete(id)
    if (this.focused === id) this.focused = null
  }

  /** A dot's button took the focus: its dot is in view and labelled, the button a ring over it (app.css). */
  focusDot(id) {
    // Its button goes with its dot (remove()): a dot that has the focus is on the map.
    const dot = this.dots.get(id)
    this.focused = id
    if (!dot.permanent) dot.marker.openTooltip()
    const at = dot.marker.getLatLng()
    if (!this.map.getBounds().contains(at)) this.map.panTo(at, MOVE)
    this.placeKey()
  }

  blurDot(id) {
    const dot = this.dots.get(id)
    if (this.focused === id) this.focused = null
    if (!dot) return
    if (!dot.permanent) dot.marker.closeTooltip()
    dot.key.style.left = dot.key.style.top = ''
  }

  /** The focused dot's button, over its dot (the map moved, or the dot did). */
  placeKey() {
    const dot = this.focused === null ? undefined : this.dots.get(this.focused)
    if (!dot) return
    const { x, y } = this.map.latLngToContainerPoint(dot.marker.getLatLng())
    dot.key.style.left = `${x}px`
    dot.key.style.top = `${y}px`
  }

  showCircles() {
    const wanted = this.map.getZoom() >= CIRCLE_ZOOM
    if (wanted !== this.map.hasLayer(this.circles)) {
      if (wanted) this.circles.addTo(this.map)
      else this.circles.remove()
    }
  }

  focus(id) {
    const dot = this.dots.get(id)
    if (dot) this.map.setView(dot.marker.getLatLng(), Math.max(this.map.getZoom(), 13), MOVE)
  }

  /** The label beside `id`'s dot (read by the browser tests). */
  label(id) {
    return this.dots.get(id)?.marker.getTooltip().getContent().textContent ?? null
  }

  /** The fill colour of `id`'s dot, or null (read by the browser tests). */
  fill(id) {
    return this.dots.get(id)?.colour ?? null
  }

  /** Where the map shows `id`, [lat, lon], or null (read by the browser tests). */
  position(id) {
    const dot = this.dots.get(id)
    if (!dot) return null
    const { lat, lng } = dot.marker.getLatLng()
    return [lat, lng]
  }

  /** Draws a track (oldest first) and puts the replay marker on its last point. */
  showTrack(points) {
    this.clearTrack()
    if (points.length === 0) return
    const line = points.map((p) => [p.lat, p.lon])
    this.track = L.polyline(line, { renderer: this.renderer, color: theme().track, weight: 3, opacity: 0.8 }).addTo(this.map)
    this.replay = L.circleMarker(line[line.length - 1], { renderer: this.renderer, radius: 8, color: '#f0a202', weight: 3 }).addTo(this.map)
    this.map.fitBounds(this.track.getBounds().pad(0.2), { maxZoom: 16, ...MOVE })
  }

  /** A fix appended to the drawn track (a live heartbeat), without moving the view. */
  extendTrack(point) {
    if (!this.track) return this.showTrack([point])
    this.track.addLatLng([point.lat, point.lon])
  }

  replayAt(point) {
    if (this.replay) this.replay.setLatLng([point.lat, point.lon])
  }

  clearTrack() {
    this.track?.remove()
    this.replay?.remove()
    this.track = null
    this.replay = null
  }
}
