//! Plausible Chinese personal names for demo data.

use rand::Rng;

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾",
    "肖", "田", "董", "袁", "潘", "蒋", "蔡", "余", "杜", "叶", "程", "苏", "魏", "吕", "丁", "任",
    "沈", "姚", "卢", "姜", "崔", "钟", "谭", "陆", "汪", "范", "金", "石", "廖", "贾", "夏", "韦",
    "方", "白", "邹", "孟", "熊", "秦", "邱", "江", "尹", "薛", "段", "雷", "侯", "龙", "史", "陶",
    "黎", "贺", "顾", "毛", "郝", "龚", "邵", "万", "严", "向", "汤", "欧阳", "司马",
];

const GIVEN_BOY: &[&str] = &[
    "浩", "宇", "轩", "子", "杰", "俊", "博", "文", "晨", "阳", "明", "辉", "豪", "志", "强", "天",
    "佑", "书", "航", "奕", "辰", "宸", "锦", "程", "然", "皓", "昊", "鸣", "远", "东", "建", "国",
    "涛", "磊", "鹏", "飞", "睿", "泽", "铭", "一", "嘉", "瑞", "诚", "康", "伟", "斌", "凯", "毅",
];

const GIVEN_GIRL: &[&str] = &[
    "涵", "欣", "怡", "梓", "雨", "萱", "思", "彤", "佳", "琪", "诺", "可", "馨", "雅", "婷", "梦",
    "瑶", "若", "溪", "诗", "紫", "妍", "语", "桐", "芷", "晓", "春", "华", "秀", "英", "兰", "丽",
    "娟", "红", "梅", "燕", "静", "悦", "蕊", "璐", "琳", "颖", "洁", "倩", "薇", "一", "心", "玉",
];

/// A name for a person of the given gender; two-character given names are more common.
pub fn person(rng: &mut impl Rng, female: bool) -> String {
    let pool = if female { GIVEN_GIRL } else { GIVEN_BOY };
    let surname = SURNAMES[rng.random_range(0..SURNAMES.len())];
    let first = pool[rng.random_range(0..pool.len())];
    if rng.random_bool(0.75) {
        let second = pool[rng.random_range(0..pool.len())];
        format!("{surname}{first}{second}")
    } else {
        format!("{surname}{first}")
    }
}

/// The surname of a name (for a guardian sharing the child's surname).
pub fn surname_of(name: &str) -> &str {
    SURNAMES
        .iter()
        .filter(|s| s.chars().count() == 2)
        .find(|s| name.starts_with(**s))
        .copied()
        .unwrap_or_else(|| &name[..name.char_indices().nth(1).map_or(name.len(), |(i, _)| i)])
}

/// A mainland mobile number (fictional range).
pub fn phone(rng: &mut impl Rng) -> String {
    const PREFIXES: &[&str] = &[
        "138", "139", "150", "151", "158", "182", "187", "135", "136", "177", "199",
    ];
    format!(
        "{}{:08}",
        PREFIXES[rng.random_range(0..PREFIXES.len())],
        rng.random_range(0..100_000_000u32)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn names_are_two_to_four_characters_and_deterministic() {
        let mut a = rand::rngs::StdRng::seed_from_u64(7);
        let mut b = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..500 {
            let n = person(&mut a, true);
            assert!((2..=4).contains(&n.chars().count()), "{n}");
            assert_eq!(n, person(&mut b, true));
        }
    }

    #[test]
    fn surnames_are_found_including_compound_ones() {
        assert_eq!(surname_of("欧阳子涵"), "欧阳");
        assert_eq!(surname_of("王浩"), "王");
        assert_eq!(phone(&mut rand::rngs::StdRng::seed_from_u64(1)).len(), 11);
    }
}
