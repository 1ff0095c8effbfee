package adserver

import "github.com/valyala/fasthttp"

// tagJS is the embeddable ad tag. A page includes it once:
//
//	<div data-adsyn-site="SITE" data-adsyn-slot="SLOT" data-adsyn-cats="news,sport"></div>
//	<script async src="https://EDGE/tag.js"></script>
//
// For each slot it asks the page's CMP (__tcfapi) for the TC string, fetches
// /ad as JSON (with the visitor's cookie when the page is on one of the
// site's registered domains; elsewhere the browser refuses that answer, and
// the tag asks again without cookies, for a contextual ad), renders the ad in a sandboxed iframe (no same-origin: the ad
// cannot touch the page), collapses the slot when there is none, and sends
// the viewable beacon to /imp once at least half the ad has been in view for
// one second. Nothing in it blocks the page.
const tagJS = `(function(){"use strict";
var d=document,w=window,s=d.currentScript,base="",cred=1;
try{base=new URL(s.src).origin}catch(e){}
function enc(v){return encodeURIComponent(v)}
function tcf(cb){var done=false;function fin(g,t){if(!done){done=true;cb(g,t)}}
if(typeof w.__tcfapi!=="function"){fin(null,"");return}
try{w.__tcfapi("addEventListener",2,function(r,ok){
if(ok&&r&&(r.eventStatus==="tcloaded"||r.eventStatus==="useractioncomplete")){fin(r.gdprApplies?1:0,r.tcString||"");
try{if(r.listenerId!=null)w.__tcfapi("removeEventListener",2,function(){},r.listenerId)}catch(e){}}
else if(ok===false){fin(1,"")}})}catch(e){fin(1,"")}
setTimeout(function(){fin(1,"")},2000)}
function seen(f,u){if(!u||!("IntersectionObserver" in w))return;var t=null,vis=false,sent=false,io;
function beacon(){try{fetch(u,{mode:"no-cors",credentials:"include",keepalive:true})}catch(x){(new Image()).src=u}}
function off(){if(t){clearTimeout(t);t=null}}
function arm(){if(sent||t||!vis||d.hidden)return;t=setTimeout(function(){t=null;if(vis&&!d.hidden){sent=true;io.disconnect();beacon()}else arm()},1000)}
io=new IntersectionObserver(function(es){vis=es[es.length-1].intersectionRatio>=0.5;if(vis)arm();else off()},{threshold:[0,0.5,1]});
io.observe(f);d.addEventListener("visibilitychange",function(){if(d.hidden)off();else arm()})}
function show(el,ad){var f=d.createElement("iframe");
f.setAttribute("sandbox","allow-scripts allow-popups allow-popups-to-escape-sandbox allow-top-navigation-by-user-activation");
f.setAttribute("title","Advertisement");f.setAttribute("scrolling","no");f.setAttribute("data-adsyn-ad",ad.id);
f.style.border="0";f.style.display="block";f.width=ad.w||"100%";f.height=ad.h||250;
f.srcdoc=ad.html;el.appendChild(f);seen(f,ad.imp)}
function ask(q){var c=cred;return fetch(base+"/ad?"+q+(c?"&cred=1":""),{credentials:c?"include":"omit"})
.catch(function(e){if(!c)throw e;cred=0;return ask(q)})}
function load(el,g,t){var site=el.getAttribute("data-adsyn-site")||(s&&s.getAttribute("data-site"))||"",slot=el.getAttribute("data-adsyn-slot")||"";
var q="site="+enc(site)+"&slot="+enc(slot)+"&fmt=json&url="+enc(location.origin+location.pathname);
var c=el.getAttribute("data-adsyn-cats");if(c)q+="&c="+enc(c);
if(g!==null)q+="&gdpr="+g+"&gdpr_consent="+enc(t);
ask(q).then(function(r){return r.status===200?r.json():null})
.then(function(ad){if(ad&&ad.html)show(el,ad);else el.style.display="none"})
.catch(function(){el.style.display="none"})}
function run(){var els=d.querySelectorAll("[data-adsyn-slot]:not([data-adsyn-done])");if(!els.length)return;
tcf(function(g,t){for(var i=0;i<els.length;i++){els[i].setAttribute("data-adsyn-done","1");load(els[i],g,t)}})}
if(d.readyState==="loading")d.addEventListener("DOMContentLoaded",run);else run();
(w.adsyn=w.adsyn||{}).refresh=run})();
`

// TagJS answers GET /tag.js.
func (e *Edge) TagJS(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("application/javascript; charset=utf-8")
	ctx.Response.Header.Set("Cache-Control", "public, max-age=300")
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
	ctx.SetBodyString(tagJS)
}
