// mlsize HTML report: draws the treemap and wires the controls. Every figure
// comes from the embedded JSON (what `--format json --tree` prints); this
// script only lays it out (d3-hierarchy's squarified treemap) and filters.
// The state lives in the URL fragment (#path=/usr/lib&colour=layer&wasted=1
// &search=cudnn&layer=3), so a view can be linked to.
(function () {
  'use strict';
  var loaded = performance.now();
  var data = JSON.parse(document.getElementById('mlsize-data').textContent);
  var kind = document.body.getAttribute('data-kind');

  // Colours with a legend (every colour has a text label next to it).
  var CATEGORY = {
    'pip-cache': '#e76f51', 'conda-pkgs': '#f4a261', 'apt-cache': '#e9c46a',
    'model-cache': '#b5838d', 'nsight': '#9d4edd', 'cupti': '#c77dff',
    'headers': '#90be6d', 'static-libs': '#43aa8b', 'cuda-libs': '#4d908e',
    'cuda-tools': '#577590', 'python-bytecode': '#f9c74f', 'docs': '#adb5bd',
    'other': '#8ecae6'
  };
  var LAYERS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948',
    '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac', '#86bcb6', '#d37295'];
  var CHANGE = { 'new': '#f79009', 'grew': '#d92d20', 'shrank': '#12b76a', 'removed': '#2e90fa' };

  function categoryColour(c) {
    if (CATEGORY[c]) { return CATEGORY[c]; }
    var h = 0;
    for (var i = 0; i < c.length; i++) { h = (h * 31 + c.charCodeAt(i)) % 360; }
    return 'hsl(' + h + ',45%,65%)';
  }
  function layerColour(i) { return LAYERS[i % LAYERS.length]; }

  var UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  function human(b) {
    var v = b, u = 0;
    while (v >= 1024 && u < UNITS.length - 1) { v /= 1024; u++; }
    return (u === 0 ? String(v) : v.toFixed(1)) + ' ' + UNITS[u];
  }
  function exact(b) { return String(b).replace(/\B(?=(\d{3})+(?!\d))/g, ','); }

  // Swatches in the legends and layer buttons.
  Array.prototype.forEach.call(document.querySelectorAll('.swatch'), function (s) {
    var c = s.getAttribute('data-category'), l = s.getAttribute('data-layer'),
      ch = s.getAttribute('data-change');
    if (c !== null) { s.style.background = categoryColour(c); }
    if (l !== null) { s.style.background = layerColour(Number(l)); }
    if (ch !== null) { s.style.background = CHANGE[ch]; }
  });

  var tree = kind === 'analyze' ? data.tree : kind === 'diff' ? data.growth : null;
  var box = document.getElementById('treemap');
  if (!tree || !box) { document.body.setAttribute('data-rendered', '1'); return; }
  Array.prototype.forEach.call(document.querySelectorAll('.controls'), function (c) { c.hidden = false; });

  // Parents and full paths, once.
  (function index(node, parent) {
    node.parent = parent;
    node.path = parent ? (parent.path === '/' ? '' : parent.path) + '/' + node.name : '/';
    (node.children || []).forEach(function (c) { index(c, node); });
  })(tree, null);

  var state = { path: '/', colour: 'category', wasted: false, search: '', layer: null };
  (function readHash() {
    var p = new URLSearchParams(location.hash.slice(1));
    if (p.get('path')) { state.path = p.get('path'); }
    if (p.get('colour') === 'layer') { state.colour = 'layer'; }
    state.wasted = p.get('wasted') === '1';
    state.search = p.get('search') || '';
    state.layer = p.get('layer') !== null && p.get('layer') !== '' ? Number(p.get('layer')) : null;
  })();
  function writeHash() {
    var p = new URLSearchParams();
    if (state.path !== '/') { p.set('path', state.path); }
    if (state.colour !== 'category') { p.set('colour', state.colour); }
    if (state.wasted) { p.set('wasted', '1'); }
    if (state.search) { p.set('search', state.search); }
    if (state.layer !== null) { p.set('layer', String(state.layer)); }
    var h = p.toString();
    history.replaceState(null, '', h ? '#' + h : location.pathname + location.search);
  }

  // A node's own size in the current view.
  function size(n) {
    if (kind === 'diff') { return n.added_bytes + n.removed_bytes; }
    return n.visible_bytes + (state.wasted ? n.wasted_bytes : 0);
  }
  function find(path) {
    var node = tree;
    if (path === '/') { return node; }
    var parts = path.split('/').filter(Boolean);
    for (var i = 0; i < parts.length; i++) {
      var next = (node.children || []).filter(function (c) {
        return !c.aggregated && c.children && c.name === parts[i];
      })[0];
      if (!next) { return node; }
      node = next;
    }
    return node;
  }
  // A directory whose only entry is a directory is shown as one box
  // (`usr/local/lib`), down to where the bytes branch.
  function effective(n) {
    while (n.children && n.children.length === 1 && n.children[0].children) { n = n.children[0]; }
    return n;
  }
  function label(n) {
    if (n.aggregated) { return exact(n.files) + ' small files'; }
    var e = effective(n);
    return e === n ? (n.name || '/') : e.path.slice(n.parent ? n.parent.path.length : 0).replace(/^\//, '');
  }
  // Whether a node, or a file below it, matches the search and the layer.
  function matches(n) {
    var q = state.search.toLowerCase();
    var okSearch = !q || n.path.toLowerCase().indexOf(q) >= 0;
    var okLayer = state.layer === null || n.layer_index === state.layer;
    if (!n.children) { return okSearch && okLayer; }
    if (okSearch && state.layer === null && q) { return true; }
    return n.children.some(matches);
  }
  function fill(n) {
    if (kind === 'diff') { return n.change ? CHANGE[n.change] : null; }
    if (!n.children) {
      // Wasted bytes are drawn in the colour of the layer that wrote them
      // (striped), whatever the colouring: that layer is where to fix them.
      if (state.colour === 'layer' || (n.wasted_bytes && !n.visible_bytes)) {
        return layerColour(n.layer_index);
      }
      return categoryColour(n.category);
    }
    return null;
  }
  function describe(n) {
    var parts = [n.aggregated ? n.path.replace(/\/$/, '') + '/ (' + label(n) + ')' : n.path];
    if (kind === 'diff') {
      parts.push('+' + human(n.added_bytes) + ' / -' + human(n.removed_bytes) +
        ' (' + exact(n.added_bytes) + ' added, ' + exact(n.removed_bytes) + ' removed bytes)');
      if (n.change) { parts.push(n.change); }
    } else {
      parts.push(human(n.visible_bytes) + ' visible (' + exact(n.visible_bytes) + ' bytes)');
      if (n.wasted_bytes) { parts.push(human(n.wasted_bytes) + ' wasted'); }
      if (n.category) { parts.push(n.category); }
      if (n.layer_index !== undefined) {
        var l = data.layers[n.layer_index];
        parts.push('layer ' + (n.layer_index + 1) + (l ? ': ' + l.instruction : ''));
      }
    }
    if (n.children) { parts.push(exact(n.files) + ' files'); }
    return parts.join(' · ');
  }

  var hover = document.getElementById('hover');
  function draw() {
    var started = performance.now();
    var top = find(state.path);
    state.path = top.path;
    var w = box.clientWidth || 1000, h = box.clientHeight || 560;
    var root = d3.hierarchy(top, function (d) { return effective(d).children; })
      .sum(function (d) { return d.children ? 0 : size(d); })
      .sort(function (a, b) { return b.value - a.value; });
    d3.treemap().tile(d3.treemapSquarify).size([w, h]).round(false)
      .paddingTop(function (d) {
        // Room for a directory's name, for the two upper levels.
        if (!d.children || d.depth === 0 || d.depth > 2) { return 0; }
        return (d.x1 - d.x0) > 40 && (d.y1 - d.y0) > 40 ? 14 : 0;
      })(root);
    box.textContent = '';
    var frag = document.createDocumentFragment();
    root.descendants().forEach(function (d) {
      // Every file and directory big enough to see (the budgeted tree has
      // at most a few tens of thousands).
      if (d.depth === 0 || d.value <= 0) { return; }
      if (d.depth > 1 && ((d.x1 - d.x0) < 1 || (d.y1 - d.y0) < 1)) { return; }
      var n = d.data, el = document.createElement('div');
      el.className = 'cell' + (n.children ? ' dir' : '') +
        (n.wasted_bytes && !n.visible_bytes && !n.children ? ' wasted' : '');
      el.style.left = d.x0 + 'px';
      el.style.top = d.y0 + 'px';
      el.style.width = Math.max(0, d.x1 - d.x0) + 'px';
      el.style.height = Math.max(0, d.y1 - d.y0) + 'px';
      var colour = fill(n);
      if (colour) { el.style.backgroundColor = colour; }
      el.setAttribute('data-depth', String(d.depth));
      el.setAttribute('data-path', n.path);
      el.setAttribute('data-bytes', String(d.value));
      el.setAttribute('title', describe(n));
      if ((d.x1 - d.x0) > 30 && (d.y1 - d.y0) > 12) {
        el.textContent = label(n) + ((d.x1 - d.x0) > 90 ? ' ' + human(d.value) : '');
      }
      if ((state.search || state.layer !== null) && !matches(n)) { el.classList.add('dim'); }
      else if (state.search || state.layer !== null) { el.classList.add('hit'); }
      el.addEventListener('mouseenter', function () { hover.textContent = describe(n); });
      el.addEventListener('click', function (ev) {
        ev.stopPropagation();
        var target = n.children ? effective(n) : n.parent;
        if (target && target !== top) { state.path = target.path; update(); }
      });
      frag.appendChild(el);
    });
    box.appendChild(frag);
    crumbs(top);
    filterTables();
    document.body.setAttribute('data-rendered', '1');
    document.body.setAttribute('data-draw-ms', String(Math.round(performance.now() - started)));
  }

  function crumbs(top) {
    var nav = document.getElementById('crumbs');
    nav.textContent = '';
    var chain = [];
    for (var n = top; n; n = n.parent) { chain.unshift(n); }
    chain.forEach(function (n, i) {
      if (i > 0) { nav.appendChild(document.createTextNode(' / ')); }
      var b = document.createElement('button');
      b.type = 'button';
      b.textContent = i === 0 ? '/ (all: ' + human(size(tree) || sum(tree)) + ')' : n.name;
      b.addEventListener('click', function () { state.path = n.path; update(); });
      nav.appendChild(b);
    });
  }
  function sum(n) {
    return n.children ? n.children.reduce(function (s, c) { return s + sum(c); }, 0) : size(n);
  }

  // The search also filters the tables' paths.
  function filterTables() {
    var q = state.search.toLowerCase();
    Array.prototype.forEach.call(document.querySelectorAll('#largest tbody tr, #duplicates tbody tr, #cuda tbody tr'), function (tr) {
      var text = Array.prototype.map.call(tr.querySelectorAll('.path'), function (p) { return p.textContent; }).join('\n');
      tr.classList.toggle('hidden', !!q && text.toLowerCase().indexOf(q) < 0);
    });
    Array.prototype.forEach.call(document.querySelectorAll('button.layer'), function (b) {
      b.setAttribute('aria-pressed', String(Number(b.getAttribute('data-layer')) === state.layer));
    });
  }

  function update() { writeHash(); draw(); }

  var colour = document.getElementById('colour');
  var wasted = document.getElementById('wasted');
  var search = document.getElementById('search');
  if (colour) {
    colour.value = state.colour;
    colour.addEventListener('change', function () { state.colour = colour.value; update(); });
  }
  if (wasted) {
    wasted.checked = state.wasted;
    wasted.addEventListener('change', function () { state.wasted = wasted.checked; update(); });
  }
  if (search) {
    search.value = state.search;
    search.addEventListener('input', function () { state.search = search.value; update(); });
  }
  Array.prototype.forEach.call(document.querySelectorAll('button.layer'), function (b) {
    b.addEventListener('click', function () {
      var l = Number(b.getAttribute('data-layer'));
      state.layer = state.layer === l ? null : l;
      update();
    });
  });
  window.addEventListener('resize', draw);
  draw();
  // From the start of this script (the JSON parse included) to the first drawing.
  document.body.setAttribute('data-render-ms', String(Math.round(performance.now() - loaded)));
})();
