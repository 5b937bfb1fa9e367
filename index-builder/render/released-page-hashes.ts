/**
 * The hash of every inline script and style a release of the pages carried, oldest first: the pages' CSP
 * (serving.ts `PAGE_CSP`) allows them all, not only the scripts this release renders.
 *
 * Why: the policy is the server's (the local server's and the CloudFront response function's), the inline
 * text is the page's, and a page stays as it was published. The home page is rendered again at the next
 * flush, a plugin page only when its plugin publishes again (or at a rebuild), so when a release changes a
 * script, every page published before would be served a policy that no longer allows its own script: the
 * home page's search, and the pager of a plugin page of more than one page of versions (the later pages
 * wait in `<noscript>`, which a browser with script on does not show when the script is merely blocked).
 * Allowing each earlier release's own text by hash keeps those pages working through an upgrade, from its
 * first request on, with no `'unsafe-inline'`: what else runs is only what this registry once shipped.
 *
 * When a page script (page-script.ts, or a constant of search.ts it embeds) changes: APPEND its new hash
 * here and to test/index-builder/render/known-page-hashes.txt, and keep every earlier one (the test
 * released-page-hashes.test.ts fails until both are done, and fails when one is dropped from here). A hash
 * may go only once no page published anywhere can still carry it (every page rendered again since, by a
 * `plugindex rebuild` of every registry that served it): each costs 54 bytes of every page response's
 * header and of the 10 KB CloudFront takes for the response function's code.
 *
 * Collected from git history (2026-12-07): the policy every commit since hashes replaced 'unsafe-inline'
 * (a65bd31) served, as its serving.ts computed it; the comment names the first commit to serve each.
 * Styles: the pages carried their style inline until 6cadee0 (style.css since).
 */
export const RELEASED_PAGE_SCRIPT_HASHES: readonly string[] = [
  'sha256-QTnpZEhkc5jxUnzLZ6Q8RQc03wsQ/TZKvTNi1W88TLU=', // a65bd31 2026-12-02
  'sha256-Tu3rsxu9Pco5Yi/wgngxVOf8sWNWpwmKsmdBaIASI3U=', // 5649a0e 2026-12-02
  'sha256-a03HSFsxPP77DYND7yKBlR3uMLURf6A+n+/XXdSJwfQ=', // 9d5d998 2026-12-02
  'sha256-8087IMDAW67q/TPi83MHIsmkQehm7+pVDrZCbKuADx8=', // 9d5d998 2026-12-02
  'sha256-m9waGumBT4G7UVkhMiIxb65NP69755iZ10TNwDwzmPs=', // 8f58ec7 2026-12-02
  'sha256-EovyV2PZAZES7BG3NSwIuEk2vHktcqd/iyydik3smSw=', // 72290cd 2026-12-02
  'sha256-SN7TT8e+D1F4SdxAwKqsGAYZUePhyDWOpW3lUAgmSeQ=', // 72290cd 2026-12-02
  'sha256-xiIffH7XNaXtI3X+3vRUv7jgXowh0E7xRyWvpyFbZu4=', // 51dc36f 2026-12-03
  'sha256-E7sL6fcZRRdexqkMT/aacEfYzz8RVDp6wXJRcFcCH8E=', // 79f881c 2026-12-03
  'sha256-LklTnxdv87DM6AElcaTRI5j/u2VlJ0BDnBpz726o6t8=', // e0e3491 2026-12-04
  'sha256-nQbEcdbsVJj+G/0un7i2sIn2cPD+Ah6dneBm3B32JuI=', // ff6a574 2026-12-05
  'sha256-0TF2PkDmTOQVZjtzQFYiTcHdVEN8+1O+AxL6XRRFk40=', // 73fcbd8 2026-12-05
  'sha256-2e44wkI84FwKOiP1HR8hFWCxNVUUSshhLln95RPMlVU=', // 98d2c7d 2026-12-06
  'sha256-4DJLsFVOijaC3//V2mqoXZu/9aH/lOS+YA/537lKHzw=', // 6be6a1a 2026-12-06
  'sha256-EdbZE+1RNGda9ocXr5evd+Hr6yZM87Mjzib6yX87TIo=', // ad7128f 2026-12-06
  'sha256-ji205wIx26BtfSYCTCjiIf/5RA9/e97nm4/SIpj2SEs=', // 2bceb6d 2026-12-07
  'sha256-ufcyOMcmLZl+7IRWxVCFfiv7j59DYjA60ilEL3vixC0=', // df14000 2026-12-07
  'sha256-8psuPvv2ADszqcsSU4MaVhN7MVEoQcOz25GLyjs24xU=', // c4738b9 2026-12-07
  'sha256-7/3F77hEQ/2ag6DOfJe2wWoFCrjlTFSE/ohgkQzjkI4=', // the home page flags look-alike names 2026-12-07
  'sha256-jzBP0f1XKqtEEq29gRL1Dkzvi7UcMZ26I9DG06LRG08=', // the home page names ten look-alikes, the rest counted 2026-12-07
  'sha256-+iDxkySZkq4wkaDkzoa8zMo1fHVBBoUUSXhq/7rydCM=', // home-search.json carries ten look-alikes and the count of the rest 2026-12-07
];

/** The hash of every inline style a release of the pages carried (before style.css), oldest first. */
export const RELEASED_PAGE_STYLE_HASHES: readonly string[] = [
  'sha256-+eUiF03+bNs5xedPlsCDEEpSEk4kyQvRiu/Kd6VY/Rs=', // a65bd31 2026-12-02
  'sha256-OqiSDjwrhFpIyRJH5edyyT74SwbN+k02nWPj3DAbdbw=', // 5649a0e 2026-12-02
  'sha256-cwHp9qYJ1nEpX53dJ9vtL0OU8cE/C/b68HDJTIT9UNc=', // 9d5d998 2026-12-02
  'sha256-sP4UOKjefBv3B7W2PFIAh2WHfLRTXvUs/3kk+Kw1OY0=', // 72290cd 2026-12-02
  'sha256-u7/cl9wfKv5GLC9wKrsAHdN+VYISr3FTSFFplI+Tnq4=', // fcb4807 2026-12-03
];
