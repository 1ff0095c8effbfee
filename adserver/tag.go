package adserver

import (
	"bytes"
	"compress/gzip"
	"strconv"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/valyala/fasthttp"
)

// tagJS is the embeddable ad tag. A page includes it once:
//
//	<div data-adsyn-site="SITE" data-adsyn-slot="SLOT" data-adsyn-cats="news,sport"></div>
//	<script async src="https://EDGE/tag.js" data-site="SITE" data-adsyn-pageview></script>
//
// It waits for the page's consent choice (IAB TCF: the CMP's "tcloaded" or
// "useractioncomplete"; while the banner is up, "cmpuishown", it waits as
// long as the visitor takes; a CMP that says nothing in 2 s counts as no
// consent), then for each slot fetches /ad as JSON (with the visitor's
// cookie when the page is on one of the site's registered domains;
// elsewhere the browser refuses that answer, and the tag asks again without
// cookies, for a contextual ad), renders the ad in a sandboxed iframe (no
// same-origin: the ad cannot touch the page), collapses the slot when there
// is none, and sends the viewable beacon to /imp once at least half the ad
// has been in view for one second. The slots of one site go in one
// request (slots=a,b; the ads share one document head). A later choice (the visitor accepts
// after all) fills the slots still empty. With data-adsyn-pageview it also
// sends the pageview to /p.gif, once the choice is known, carrying gdpr and
// gdpr_consent, which a static <img> cannot. adsyn.refresh() fills slots
// added since (single-page apps); adsyn.pageview() counts a page changed in
// place. Every request names the page's origin only (referrerPolicy
// "origin"), which the edge checks against the site's domains. Nothing in it
// blocks the page.
const tagJS = `(function(){"use strict";
var d=document,w=window,s=d.currentScript,base="",cred=1,sig=null,pvSent=0;
try{base=new URL(s.src).origin}catch(e){}
function enc(v){return encodeURIComponent(v)}
function consentQ(g,t){return g===null?"":"&gdpr="+g+"&gdpr_consent="+enc(t)}
function tcf(cb){var timer=null,last=null;
function fire(g,t){if(timer){clearTimeout(timer);timer=null}var k=g+"|"+t;if(k===last)return;last=k;cb(g,t)}
if(typeof w.__tcfapi!=="function"){cb(null,"");return}
timer=setTimeout(function(){timer=null;fire(1,"")},2000);
try{w.__tcfapi("addEventListener",2,function(r,ok){
if(ok&&r&&(r.eventStatus==="tcloaded"||r.eventStatus==="useractioncomplete"))fire(r.gdprApplies?1:0,r.tcString||"");
else if(ok&&r&&r.eventStatus==="cmpuishown"){if(timer){clearTimeout(timer);timer=null}}
else if(ok===false)fire(1,"")})}catch(e){fire(1,"")}}
function seen(f,u){if(!u||!("IntersectionObserver" in w))return;var t=null,vis=false,sent=false,io;
function beacon(){try{fetch(u,{mode:"no-cors",credentials:"include",keepalive:true,referrerPolicy:"origin"})}catch(x){(new Image()).src=u}}
function off(){if(t){clearTimeout(t);t=null}}
function arm(){if(sent||t||!vis||d.hidden)return;t=setTimeout(function(){t=null;if(vis&&!d.hidden){sent=true;io.disconnect();beacon()}else arm()},1000)}
io=new IntersectionObserver(function(es){vis=es[es.length-1].intersectionRatio>=0.5;if(vis)arm();else off()},{threshold:[0,0.5,1]});
io.observe(f);d.addEventListener("visibilitychange",function(){if(d.hidden)off();else arm()})}
function show(el,ad){var f=d.createElement("iframe");
f.setAttribute("sandbox","allow-scripts allow-popups allow-popups-to-escape-sandbox allow-top-navigation-by-user-activation");
f.setAttribute("title","Advertisement");f.setAttribute("scrolling","no");f.setAttribute("data-adsyn-ad",ad.id);
f.style.border="0";f.style.display="block";f.width=ad.w||"100%";f.height=ad.h||250;
f.srcdoc=ad.html;el.style.display="";el.setAttribute("data-adsyn-done","ad");el.appendChild(f);seen(f,ad.imp)}
function empty(el){el.style.display="none";el.setAttribute("data-adsyn-done","empty")}
function ask(q){var c=cred;return fetch(base+"/ad?"+q+(c?"&cred=1":""),{credentials:c?"include":"omit",referrerPolicy:"origin"})
.catch(function(e){if(!c)throw e;cred=0;return ask(q)})}
function site(el){return (el&&el.getAttribute("data-adsyn-site"))||(s&&s.getAttribute("data-site"))||""}
function cats(els){for(var i=0;i<els.length;i++){var c=els[i].getAttribute("data-adsyn-cats");if(c)return c}return ""}
function load(els){var my=sig,byslot={};
var q="site="+enc(site(els[0]))+"&fmt=json&url="+enc(location.origin+location.pathname),c=cats(els);if(c)q+="&c="+enc(c);
if(els.length===1)q+="&slot="+enc(els[0].getAttribute("data-adsyn-slot")||"");
else q+="&slots="+els.map(function(el){return enc(el.getAttribute("data-adsyn-slot")||"")}).join(",");
els.forEach(function(el){el.setAttribute("data-adsyn-done","asking");byslot[el.getAttribute("data-adsyn-slot")]=el});
function none(el){if(sig!==my)load([el]);else empty(el)}
ask(q+consentQ(my.g,my.t)).then(function(r){return r.status===200?r.json():null})
.then(function(a){var ads=a?(a.ads||[a]):[];ads.forEach(function(ad){var el=els.length===1?els[0]:byslot[ad.slot];
if(el&&ad.html){if(a.head)ad.html=a.head+ad.html;show(el,ad);delete byslot[el.getAttribute("data-adsyn-slot")]}});
els.forEach(function(el){if(el.getAttribute("data-adsyn-done")==="asking")none(el)})})
.catch(function(){els.forEach(none)})}
function pageview(){if(!sig||!s||!s.hasAttribute("data-adsyn-pageview"))return;var i=new Image();i.referrerPolicy="origin";
i.src=base+"/p.gif?site="+enc(site(null))+"&u="+enc(location.href)+"&r="+enc(d.referrer)+consentQ(sig.g,sig.t)}
function fill(again){if(!sig)return;var els=d.querySelectorAll("[data-adsyn-slot]"),by={},order=[];
for(var i=0;i<els.length;i++){var st=els[i].getAttribute("data-adsyn-done"),k=site(els[i]);
if(!st||again&&st==="empty"){if(!by[k]){by[k]=[];order.push(k)}if(by[k].length<8)by[k].push(els[i])}}
order.forEach(function(k){load(by[k])})}
function start(){tcf(function(g,t){sig={g:g,t:t};if(!pvSent){pvSent=1;pageview()}fill(true)})}
if(d.readyState==="loading")d.addEventListener("DOMContentLoaded",start);else start();
var api=w.adsyn=w.adsyn||{};api.refresh=function(){fill(false)};api.pageview=pageview})();
`

// The tag's answer is made once: its validator and a gzipped copy.
var (
	tagGzip     = gzipped(tagJS)
	tagETag     = `"` + strconv.FormatUint(xxhash.Sum64String(tagJS), 36) + `"`
	tagModified = time.Now().UTC().Truncate(time.Second) // this build's tag is new to whoever starts it
)

func gzipped(s string) []byte {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression) // the level is valid
	_, _ = zw.Write([]byte(s))                             // a bytes.Buffer does not fail
	_ = zw.Close()
	return b.Bytes()
}

// TagJS answers GET and HEAD /tag.js: cacheable for five minutes, then
// revalidated (ETag, Last-Modified: 304), gzipped for clients that take it,
// and loadable by pages that require CORP (Cross-Origin-Embedder-Policy).
func (e *Edge) TagJS(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.SetContentType("application/javascript; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("X-Content-Type-Options", "nosniff")
	h.SetCanonical(headerCORP, crossOrigin)
	h.Set("Vary", "Accept-Encoding")
	h.Set("ETag", tagETag)
	h.SetLastModified(tagModified)
	if inm := ctx.Request.Header.Peek("If-None-Match"); len(inm) > 0 {
		if bytes.Contains(inm, []byte(tagETag)) || bytes.Equal(bytes.TrimSpace(inm), []byte("*")) {
			ctx.SetStatusCode(fasthttp.StatusNotModified) // headers kept: a 304 carries the validators
			return
		}
	} else if ims := ctx.Request.Header.Peek("If-Modified-Since"); len(ims) > 0 {
		if t, err := fasthttp.ParseHTTPDate(ims); err == nil && !tagModified.After(t) {
			ctx.SetStatusCode(fasthttp.StatusNotModified) // headers kept: a 304 carries the validators
			return
		}
	}
	if ctx.Request.Header.HasAcceptEncoding("gzip") {
		h.Set("Content-Encoding", "gzip")
		ctx.SetBody(tagGzip)
		return
	}
	ctx.SetBodyString(tagJS)
}
