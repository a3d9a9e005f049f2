// The live timeline page of `t2s serve`: one lane per instance with calls as bars coloured by stage, workflow
// selection with deadline markers, queue depth, why each call went where it went (hover), and an ask form.
#include <string>

#include "server/serve_app.hpp"

namespace t2s::server {

const std::string& timeline_page_html() {
  static const std::string page = R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>t2s serve: live timeline</title>
<style>
body{font:13px system-ui,sans-serif;margin:0;background:#fafafa;color:#222}
header{padding:8px 14px;background:#1f2937;color:#fff;display:flex;gap:16px;align-items:center}
header b{font-size:15px}#mode{background:#fde68a;color:#3b2f00;padding:6px 14px;font-size:12px}
main{display:grid;grid-template-columns:380px 1fr;gap:12px;padding:12px}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px}
h2{font-size:13px;margin:0 0 8px}label{display:block;margin:6px 0 2px}
select,input{width:100%;box-sizing:border-box;padding:4px}button{margin-top:8px;padding:5px 12px}
#stages div{padding:1px 0}#sql{white-space:pre-wrap;background:#f3f4f6;padding:6px;font-family:monospace}
table{border-collapse:collapse;margin-top:6px}td,th{border:1px solid #ddd;padding:2px 6px}
#lanes{position:relative}.lane{position:relative;height:46px;border-bottom:1px solid #eee}
.lname{position:absolute;left:0;top:2px;width:150px;font-size:11px;line-height:14px}
.track{position:absolute;left:155px;right:0;top:0;bottom:0;background:#fcfcfc}
.bar{position:absolute;height:12px;border-radius:2px;opacity:.85;cursor:pointer}
.bar.sel{outline:2px solid #111;opacity:1}.bar.live{background-image:repeating-linear-gradient(45deg,transparent 0 4px,rgba(255,255,255,.5) 4px 8px)}
.dl{position:absolute;top:0;bottom:0;width:2px;background:#dc2626}.nowline{position:absolute;top:0;bottom:0;width:1px;background:#999}
#tip{position:fixed;pointer-events:none;background:#111;color:#fff;padding:6px 8px;font-size:11px;border-radius:4px;display:none;max-width:380px;z-index:9}
#legend span{display:inline-block;margin-right:8px;font-size:11px}#legend i{display:inline-block;width:10px;height:10px;margin-right:3px;vertical-align:middle}
#wfs{max-height:160px;overflow:auto;font-size:11px}#wfs div{cursor:pointer;padding:1px 3px}#wfs div.sel{background:#e0e7ff}
.err{color:#b91c1c}
</style></head><body>
<header><b>t2s serve</b><span id="policy"></span><span id="clock"></span><a style="color:#93c5fd" href="/trace.json">trace.json</a><a style="color:#93c5fd" href="/metrics">metrics</a></header>
<div id="mode">loading…</div>
<main>
<div>
<section><h2>Ask a question</h2>
<form id="ask"><label for="db">Database</label><select id="db"></select>
<label for="q">Question</label><input id="q" list="examples" placeholder="pick an example or type">
<datalist id="examples"></datalist>
<label for="dl">Deadline (ms)</label><input id="dl" type="number" value="20000">
<button id="go" type="submit">Ask</button></form>
<div id="status" style="margin-top:6px"></div>
<h2 style="margin-top:10px">Stages</h2><div id="stages"></div>
<h2 style="margin-top:10px">SQL</h2><div id="sql"></div><div id="rows"></div></section>
<section style="margin-top:12px"><h2>Workflows (click to select)</h2><div id="wfs"></div></section>
</div>
<section><h2>Instances (last <span id="win">60</span> s) — bars: LLM calls coloured by stage; red: deadline of the selected workflow</h2>
<div id="legend"></div><div id="lanes"></div></section>
</main><div id="tip"></div>
<script>
const COLORS={tool_picker:'#9ca3af',keyword_extraction:'#a78bfa',column_selection:'#8b5cf6',candidate_generation:'#2563eb',
revise:'#f59e0b',unit_test_generation:'#10b981',evaluation:'#14b8a6',selection:'#ec4899',sql_execution:'#6b7280',other:'#64748b'};
let WINDOW=60;let data=null,selected=null,info=null,ws=null,seq=0,pending={};
const $=id=>document.getElementById(id);
$('legend').innerHTML=Object.entries(COLORS).map(([k,c])=>`<span><i style="background:${c}"></i>${k}</span>`).join('');
function esc(s){return String(s).replace(/[&<>"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]))}
const TOK=new URLSearchParams(location.search).get('access_token');const AUTH=TOK?'access_token='+encodeURIComponent(TOK):'';
async function loadInfo(){info=await (await fetch('/api/info'+(AUTH?'?'+AUTH:''))).json();$('mode').textContent='Answers: '+info.answers;
 $('policy').textContent='policy: '+info.policy;const dbs=Object.keys(info.databases);
 $('db').innerHTML=dbs.map(d=>`<option>${esc(d)}</option>`).join('');fillExamples()}
function fillExamples(){const qs=(info&&info.databases[$('db').value])||[];$('examples').innerHTML=qs.map(q=>`<option value="${esc(q)}">`).join('');
 if(qs.length&&!$('q').value)$('q').value=qs[0]}
$('db').onchange=()=>{$('q').value='';fillExamples()};
function connect(){ws=new WebSocket((location.protocol==='https:'?'wss://':'ws://')+location.host+'/ws'+(AUTH?'?'+AUTH:''));
 ws.onmessage=ev=>{const f=JSON.parse(ev.data);if(f.type==='accepted'){selected=f.workflow;$('status').textContent='accepted as workflow '+f.workflow}
 else if(f.type==='stage'){$('stages').insertAdjacentHTML('beforeend',`<div class="stage">${esc(f.stage)} ${esc(f.state)} ${f.state==='done'?Math.round(f.ms)+' ms':''} ${f.detail?'<span class=err>'+esc(f.detail)+'</span>':''}</div>`)}
 else if(f.type==='result'){$('status').innerHTML=`<span id="result">done in ${Math.round(f.latency_ms)} ms, deadline ${f.deadline_met?'met':'missed'}</span>`;
  $('sql').textContent=f.sql;let h='<table id="rowtable"><tr>'+f.columns.map(c=>'<th>'+esc(c)+'</th>').join('')+'</tr>';
  for(const r of f.rows.slice(0,50))h+='<tr>'+r.map(v=>'<td>'+esc(v)+'</td>').join('')+'</tr>';$('rows').innerHTML=h+'</table>';$('go').disabled=false}
 else if(f.type==='error'){$('status').innerHTML=`<span class="err" id="error">${esc(f.code)}: ${esc(f.message)}</span>`;$('go').disabled=false}};
 ws.onclose=()=>setTimeout(connect,1000)}
$('ask').onsubmit=e=>{e.preventDefault();if(!ws||ws.readyState!==1)return;$('stages').innerHTML='';$('sql').textContent='';$('rows').innerHTML='';
 $('go').disabled=true;$('status').textContent='asking…';
 ws.send(JSON.stringify({type:'ask',id:'page'+(++seq),db:$('db').value,question:$('q').value,deadline_ms:Number($('dl').value)||20000}))};
function tip(e,html){const t=$('tip');t.innerHTML=html;t.style.display='block';
 const x=Math.min(e.clientX+12,window.innerWidth-t.offsetWidth-8),y=Math.min(e.clientY+12,window.innerHeight-t.offsetHeight-8);
 t.style.left=Math.max(0,x)+'px';t.style.top=Math.max(0,y)+'px'}
function untip(){$('tip').style.display='none'}
function render(){if(!data)return;const now=data.now;
 let first=now;for(const c of data.calls){const s=c.s>0?c.s:c.q;if(s>now-60)first=Math.min(first,s)}
 WINDOW=Math.min(60,Math.max(10,Math.ceil(now-first+2)));$('win').textContent=WINDOW;const t0=now-WINDOW;
 const wf=selected!=null?data.workflows.find(w=>w.id===selected):null;
 const SPAN=WINDOW+(wf&&wf.deadline>now&&wf.deadline<now+60?wf.deadline-now+1:0);$('clock').textContent='t = '+now.toFixed(1)+' s';
 const lanes=$('lanes');let html='';const insts=data.instances;
 insts.forEach((ins,i)=>{const kv=ins.kv_total>0?Math.round(100*ins.kv_used/ins.kv_total)+'%':'n/a';
  html+=`<div class="lane"><div class="lname"><b>${esc(ins.name)}</b> ${esc(ins.kind)}${ins.healthy?'':' <span class=err>down</span>'}<br>queue ${ins.waiting} · run ${ins.running}/${ins.capacity} · KV ${kv}</div><div class="track" data-i="${i}">`;
  for(const c of data.calls){if(c.inst!==i)continue;const s=c.s>0?c.s:c.q,e=c.e<0?now:c.e;if(e<t0)continue;
   const l=Math.max(0,(s-t0)/SPAN*100),w=Math.max(0.3,(e-Math.max(s,t0))/SPAN*100);
   const top=4+((c.id*7)%3)*8;
   html+=`<div class="bar${c.e<0?' live':''}${c.wf===selected?' sel':''}" data-c="${c.id}" style="left:${l}%;width:${w}%;top:${top}px;background:${COLORS[c.stage]||'#64748b'}"></div>`}
  if(wf&&wf.deadline>t0&&wf.deadline<t0+SPAN)html+=`<div class="dl" style="left:${(wf.deadline-t0)/SPAN*100}%"></div>`;
  html+='</div></div>'});
 lanes.innerHTML=html;
 $('wfs').innerHTML=data.workflows.slice(-60).reverse().map(w=>`<div data-w="${w.id}" class="${w.id===selected?'sel':''}">#${w.id} ${esc(w.label)} ${w.end<0?'running':(w.ok?'ok':'failed')+' '+(w.end-w.arrival).toFixed(2)+'s'+(w.end<=w.deadline?'':' (late)')}</div>`).join('');
 for(const d of $('wfs').children)d.onclick=()=>{selected=Number(d.dataset.w);render()};
 const byId={};for(const c of data.calls)byId[c.id]=c;
 for(const b of lanes.querySelectorAll('.bar')){const c=byId[b.dataset.c];
  b.onmousemove=e=>tip(e,`<b>${esc(c.stage)}</b> workflow #${c.wf} call ${c.id} on ${esc(insts[c.inst].name)}<br>prompt ${c.p} tok (cached ${c.c}) · output ${c.o} tok${c.att>1?' · attempt '+c.att:''}<br>queued ${(c.s-c.q).toFixed(3)} s · ran ${c.e<0?'…':(c.e-c.s).toFixed(3)+' s'} (model predicted ${c.pred.toFixed(3)} s)<br><b>why here</b>: estimated completion ${(c.est-c.q).toFixed(3)} s after dispatch; slack ${c.slack.toFixed(2)} s<br>estimates on each instance: ${c.alt.map((a,j)=>esc(insts[j].name)+' '+(a-c.q).toFixed(3)+'s').join(', ')}${c.err?'<br><span class=err>'+esc(c.err)+'</span>':''}`);
  b.onmouseleave=untip;b.onclick=()=>{selected=c.wf;render()}}}
async function poll(){try{const since=data?Math.max(0,data.now-60):0;data=await (await fetch('/timeline.json?since='+since+(AUTH?'&'+AUTH:''))).json();render()}catch(e){}
 setTimeout(poll,700)}
loadInfo().then(()=>{connect();poll()});
</script></body></html>
)HTML";
  return page;
}

}  // namespace t2s::server
