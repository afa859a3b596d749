"""The data dictionary of SPEC §3: every input column, its Chinese label and its kind.

This is a description of the data, not policy: it holds no amount, threshold or weight.
The kinds decide how a cell is validated and normalised (`rules.records`).
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    key: str
    label: str
    kind: str          # code text date year count amount signed ratio bool stage rating
    unit: str = ""
    required: bool = False
    help: str = ""             # what to fill in, for the template's help sheet and the declaration form
    aliases: tuple = ()        # earlier Chinese headers still accepted on import


def _f(key, label, kind, unit="", required=False, help="", aliases=()):
    return Field(key, label, kind, unit, required, help, tuple(aliases))


# SPEC §2.3 (v2): "恢复…前每个评价周期均扣分" — these fields state the status at the end of Y
_STATUS_HELP = "填写截至评价年度12月31日的状态（不是当年发生的事件）：到年末仍未恢复的，每个评价年度都填，恢复前每个评价周期均扣分"


IDENTITY = [
    _f("credit_code", "统一社会信用代码", "code", required=True),
    _f("name", "企业名称", "text"),
    _f("park", "所属园区", "text"),
    _f("industry", "所属行业", "text"),
    _f("registered_on", "注册成立日期", "date", required=True),
    _f("year", "评价年度", "year", required=True),
]

# 表2/表6, in SPEC §2.2 order; the labels are SPEC's.
INDICATORS = [
    _f("rd_expense", "研发费用金额", "amount", "万元"),
    _f("rd_expense_growth", "研发费用增速", "signed", "%"),
    _f("rd_intensity", "研发费用占营业收入的比例", "ratio", "%"),
    _f("tech_staff_ratio", "科技人员占职工总数的比重", "ratio", "%"),
    _f("invention_applications", "与主营业务相关的发明专利申请量", "count", "件"),
    _f("pct_applications", "与主营业务相关的PCT专利申请量", "count", "件"),
    _f("tech_contract_turnover", "企业技术合同成交额", "amount", "万元"),
    _f("university_contract_turnover", "企业与高校、院所的技术合同成交额", "amount", "万元"),
    _f("standards", "当年主导或参与制定国际标准、国家标准、行业标准数量", "count", "个"),
    _f("invention_grants", "当年发明专利授权数", "count", "件"),
    _f("hitech_product_revenue", "高新技术产品收入", "amount", "万元"),
    _f("revenue", "营业收入", "amount", "万元", required=True),
    _f("revenue_growth", "营业收入增长率", "signed", "%"),
    _f("postgraduate_ratio", "研究生以上人员占比", "ratio", "%"),
    _f("rd_tax_deduction", "研发费用加计扣除所得税减免额", "amount", "万元"),
    _f("return_on_equity", "净资产利润率", "signed", "%"),
    _f("staff_growth", "企业年末职工总数同比增速", "signed", "%"),
    _f("profit_growth", "企业利润总额增速", "signed", "%"),
    _f("export_value", "当年出口总额", "amount", "万美元"),
    _f("bachelor_ratio", "本科以上学历人员占比", "ratio", "%"),
    _f("graduates_hired", "当年吸纳高校应届毕业生人数", "count", "人"),
    _f("provincial_platforms_built", "近两年承担建设省级及以上研发或创新平台数量", "count", "项"),
    _f("provincial_awards", "近两年获得省级及以上科技奖励数量", "count", "项"),
    _f("provincial_projects", "近两年承担省级及以上科技计划项目数量", "count", "项"),
    _f("venture_capital", "获得风险投资金额", "amount", "万元"),
    _f("city_platforms_total", "累计拥有市级及以上研发或创新平台数量", "count", "个"),
    _f("city_awards", "近两年获得市级科技奖励数量", "count", "项"),
    _f("city_projects", "近两年承担市级科技计划项目数量", "count", "项"),
    _f("is_hte_or_tech_sme", "是否是高新技术企业/科技型中小企业", "bool"),
    _f("competitions", "近两年参加国家级、省级、市级创新创业赛事", "count", "次"),
    _f("talents_teams", "引进和培育国家级、省级、市级人才或团队", "count", "个"),
    _f("subsidiaries", "参股或控股企业数量", "count", "家"),
    _f("is_champion_or_specialized", "是否是制造业单项冠军企业、创新龙头企业、专精特新企业", "bool"),
    _f("is_listed", "上市企业", "bool"),
    _f("foreign_returnee_staff", "外籍常驻人员和留学归国人员数", "count", "人"),
]

OTHER = [
    # 表3 negative list
    _f("credit_blacklisted", "列入经营异常名录或严重违法失信企业名单", "bool"),
    _f("env_credit_rating", "环境信用等级", "rating"),
    _f("major_safety_incident", "发生较大及以上安全生产事故或群体性事件", "bool"),
    _f("hte_requalification_failed", "截至当年年末未通过高新技术企业重新认定且未恢复", "bool",
       help=_STATUS_HELP, aliases=["未通过高新技术企业重新认定且未恢复"]),
    _f("tech_sme_reevaluation_failed", "截至当年年末未通过科技型中小企业重新评价入库且未恢复", "bool",
       help=_STATUS_HELP, aliases=["未通过科技型中小企业重新评价入库且未恢复"]),
    _f("tech_sme_out_of_scope", "超出科技型中小企业评价范围", "bool"),
    _f("delisted_platforms_national", "截至当年年末被摘牌且未恢复的国家级研发或创新平台数", "count", "个",
       help=_STATUS_HELP, aliases=["被摘牌的国家级研发或创新平台数"]),
    _f("delisted_platforms_provincial", "截至当年年末被摘牌且未恢复的省级研发或创新平台数", "count", "个",
       help=_STATUS_HELP, aliases=["被摘牌的省级研发或创新平台数"]),
    _f("delisted_platforms_municipal", "截至当年年末被摘牌且未恢复的市级研发或创新平台数", "count", "个",
       help=_STATUS_HELP, aliases=["被摘牌的市级研发或创新平台数"]),
    # 表4 history overrides (SPEC §2.4)
    _f("stage_prev1", "上一年度发展阶段", "stage"),
    _f("stage_prev2", "前两年度发展阶段", "stage"),
    _f("expansion_since", "进入扩张期的首个年度", "year",
       help="当前连续扩张期的首个年度；数据中连续扩张期开始前一年没有记录时，用于向前延伸（SPEC §2.4）"),
    # 表5
    _f("major_projects_national", "承担国家重大科技项目数", "count", "个"),
    _f("major_projects_provincial", "承担省级重大科技项目数", "count", "个"),
    _f("major_projects_municipal", "承担市级重大科技项目数", "count", "个"),
    # §五.四 rewards
    _f("hte_recognized_in_year", "当年认定（含重新认定）为高新技术企业", "bool"),
    _f("tech_sme_listed", "当年评价入库国家科技型中小企业", "bool"),
    _f("tech_sme_streak", "连续评价入库科技型中小企业年数", "count", "年",
       help="截至评价年度的连续入库年数；数据中连续入库期开始前一年没有记录时，用于向前延伸（SPEC §2.4）"),
    _f("overseas_rd_institutions_new", "当年在境外新设研发机构或孵化器数", "count", "个"),
    _f("new_provincial_institutions", "新认定河南省中试基地、产业研究院、新型研发机构数", "count", "个"),
]

RECORD_FIELDS = IDENTITY + INDICATORS + OTHER

CONTRACT_FIELDS = [
    _f("contract_no", "合同登记编号", "text", required=True),
    _f("credit_code", "统一社会信用代码", "code", required=True),
    _f("kind", "合同类别", "contract_kind", required=True),
    _f("amount", "合同成交额", "money", "万元", required=True),
    _f("registered_on", "登记日期", "date", required=True),
]

STAGES = {"startup": "初创期", "growth": "成长期", "expansion": "扩张期", "mature": "成熟期"}
STAGE_LEVEL = {"startup": 1, "growth": 2, "expansion": 3, "mature": 4}
LEVEL_STAGE = {v: k for k, v in STAGE_LEVEL.items()}
RATINGS = {"honest": "诚信", "good": "良好", "warning": "警示", "bad": "不良"}
CONTRACT_KINDS = {"transfer": "技术转让", "development": "技术开发", "consulting": "技术咨询",
                  "service": "技术服务", "license": "技术许可"}
TRUE_WORDS = {"true", "1", "yes", "是", "y", "t"}
FALSE_WORDS = {"false", "0", "no", "否", "n", "f"}


def by_header(fields):
    """Map the English key, the Chinese label and the label with its unit to the field."""
    out = {}
    for f in fields:
        out[f.key] = f
        out[f.label] = f
        out[header_with_unit(f)] = f
        for a in f.aliases:
            out[a] = f
            out[f"{a}（{f.unit}）" if f.unit else a] = f
    return out


def header_with_unit(f) -> str:
    """The Chinese header of the import templates: the label and its unit, 研发费用金额（万元）."""
    return f"{f.label}（{f.unit}）" if f.unit else f.label
